"""Action and resource patterns: what check_pattern refuses, and what patterns match."""

from __future__ import annotations

import pytest

from oversight.policy.engine import check_pattern, is_action_name
from oversight.policy.engine.patterns import ActionIndex, resource_matcher


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "crm",
        "crm.contact.update",
        "crm.contact.*",
        "stripe.refund_v2.create-fast",
        "a.b.c.d.*",
    ],
)
def test_it_accepts_valid_action_patterns(pattern: str) -> None:
    check_pattern(pattern, kind="action")


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("", "empty"),
        ("crm.contact update", "whitespace"),
        (" crm", "whitespace"),
        ("crm.contact\n", "whitespace"),
        ("**", "**"),
        ("crm.**", "**"),
        ("crm.*.update", "wrong place"),
        ("crm*", "wrong place"),
        ("*.update", "wrong place"),
        ("crm.contact*", "wrong place"),
        ("crm.*.*", "wrong place"),
        ("CRM.contact", "lowercase"),
        ("crm..contact", "empty segment"),
        (".crm", "empty segment"),
        ("crm.", "empty segment"),
        ("crm/contact", "'/'"),
        ("crm:contact", "':'"),
        ("x" * 600, "longer than"),
    ],
)
def test_it_refuses_bad_action_patterns_saying_why(pattern: str, says: str) -> None:
    with pytest.raises(ValueError, match="action pattern") as caught:
        check_pattern(pattern, kind="action")
    assert says in str(caught.value)


@pytest.mark.parametrize(
    "pattern", ["*", "crm:contact/*", "stripe:charge/*", "crm:contact/42", "*/vip", "a*b*c"]
)
def test_it_accepts_valid_resource_patterns(pattern: str) -> None:
    check_pattern(pattern, kind="resource")


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("", "empty"),
        ("crm:contact/ 1", "whitespace"),
        ("crm:contact/\t", "whitespace"),
        ("crm:**", "**"),
        ("crm:contact/?", "only * is a wildcard"),
        ("crm:contact/[ab]", "only * is a wildcard"),
        ("crm:\x00", "only * is a wildcard"),
    ],
)
def test_it_refuses_bad_resource_patterns_saying_why(pattern: str, says: str) -> None:
    with pytest.raises(ValueError, match="resource pattern") as caught:
        check_pattern(pattern, kind="resource")
    assert says in str(caught.value)


def test_it_refuses_a_pattern_that_is_not_text() -> None:
    with pytest.raises(ValueError, match="must be text"):
        check_pattern(None, kind="action")  # type: ignore[arg-type]


def test_it_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        check_pattern("*", kind="agent")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("crm.contact.update", True),
        ("crm", True),
        ("crm.contact.*", False),
        ("*", False),
        ("Crm.contact", False),
        ("crm..x", False),
        ("crm.contact.", False),
        ("", False),
    ],
)
def test_action_names_are_patterns_without_wildcards(name: str, valid: bool) -> None:
    assert is_action_name(name) is valid


@pytest.mark.parametrize(
    ("pattern", "resource", "matches"),
    [
        ("crm:contact/*", "crm:contact/42", True),
        ("crm:contact/*", "crm:contact/vip/42", True),
        ("crm:contact/*", "crm:contact/", True),
        ("crm:contact/*", "crm:contacts/42", False),
        ("crm:contact/*", "CRM:contact/42", False),
        ("crm:contact/42", "crm:contact/42", True),
        ("crm:contact/42", "crm:contact/420", False),
        ("*/vip", "crm:contact/vip", True),
        ("*/vip", "crm:contact/vip/1", False),
        ("crm:*/vip*", "crm:contact/vip-7", True),
        ("crm:*/vip*", "crm:contact/x/vip", True),
        ("crm:*/vip*", "stripe:charge/vip", False),
        ("a.b*", "a.b.c", True),
        ("a.b*", "axb", False),  # dots are literal, not regex
        ("x*y", "x\ny", True),  # * matches any character, newline included
    ],
)
def test_resource_globs_match_any_run_of_characters(
    pattern: str, resource: str, matches: bool
) -> None:
    matcher = resource_matcher(pattern)
    assert matcher is not None
    assert matcher(resource) is matches


def test_a_lone_star_resource_pattern_matches_everything_without_a_matcher() -> None:
    assert resource_matcher("*") is None


def _index() -> ActionIndex[str]:
    return ActionIndex(
        [
            ("*", "everything"),
            ("crm.contact.update", "exact"),
            ("crm.contact.*", "contact-prefix"),
            ("crm.*", "crm-prefix"),
            ("stripe.refund.create", "stripe"),
        ]
    )


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("crm.contact.update", {"everything", "exact", "contact-prefix", "crm-prefix"}),
        ("crm.contact.note.add", {"everything", "contact-prefix", "crm-prefix"}),
        ("crm.contact", {"everything", "crm-prefix"}),
        ("crm.contacts.x", {"everything", "crm-prefix"}),
        ("crm", {"everything"}),
        ("stripe.refund.create", {"everything", "stripe"}),
        ("stripe.refund.create.now", {"everything"}),
        ("Crm.contact.update", {"everything"}),
    ],
)
def test_the_action_index_finds_exactly_the_matching_patterns(
    action: str, expected: set[str]
) -> None:
    found = _index().lookup(action)
    assert set(found) == expected
    assert len(found) == len(expected)
