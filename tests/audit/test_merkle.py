"""The Merkle tree of verifier.py against RFC 9162's definitions and the CT test vectors."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from oversight.audit import verifier

# The leaves and roots of the Certificate Transparency test vectors (RFC 6962/9162 trees).
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162, 2.1.1, as written: the recursive definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return verifier.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def _subtree(leaves: list[bytes]) -> Callable[[int, int], bytes]:
    return lambda a, b: mth(leaves[a:b])


def test_the_roots_match_the_certificate_transparency_vectors() -> None:
    leaves = [_leaf(d) for d in CT_LEAVES]
    for size in range(1, 9):
        assert verifier.merkle_root(leaves[:size]).hex() == CT_ROOTS[size - 1]
    assert verifier.merkle_root([]) == hashlib.sha256(b"").digest()


def test_a_leaf_is_the_event_hash_as_raw_bytes() -> None:
    event_hash = "ab" * 32
    assert verifier.leaf_hash(event_hash) == _leaf(bytes.fromhex(event_hash))


@given(st.integers(min_value=0, max_value=300))
def test_the_frontier_gives_the_recursive_root(size: int) -> None:
    leaves = [_leaf(i.to_bytes(4, "big")) for i in range(size)]
    assert verifier.merkle_root(leaves) == mth(leaves)


def test_every_inclusion_proof_verifies_and_a_wrong_one_does_not() -> None:
    leaves = [_leaf(i.to_bytes(4, "big")) for i in range(70)]
    for size in range(1, 71):
        root = mth(leaves[:size])
        for index in range(size):
            path = verifier.inclusion_path(index, size, _subtree(leaves))
            assert verifier.verify_inclusion(index, size, leaves[index], path, root)
            assert not verifier.verify_inclusion(index, size, _leaf(b"other"), path, root)
            if size > 1:
                other = (index + 1) % size
                assert not verifier.verify_inclusion(other, size, leaves[index], path, root)
                assert not verifier.verify_inclusion(index, size, leaves[index], path[:-1], root)


def test_every_consistency_proof_verifies_and_a_forked_tree_fails() -> None:
    leaves = [_leaf(i.to_bytes(4, "big")) for i in range(40)]
    forked = list(leaves)
    forked[5] = _leaf(b"rewritten")
    for size2 in range(1, 41):
        root2 = mth(leaves[:size2])
        for size1 in range(1, size2 + 1):
            root1 = mth(leaves[:size1])
            path = verifier.consistency_path(size1, size2, _subtree(leaves))
            assert verifier.verify_consistency(size1, size2, root1, root2, path)
            if size1 > 5:
                forked_root = mth(forked[:size1])
                assert not verifier.verify_consistency(size1, size2, forked_root, root2, path)
            if size1 < size2:
                assert not verifier.verify_consistency(size1, size2, root1, root2, [])
