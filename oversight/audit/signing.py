"""The key that signs checkpoints: Ed25519, from AUDIT_SIGNING_KEY (PEM text) or the PEM
file AUDIT_SIGNING_KEY_FILE; created only where AUDIT_SIGNING_KEY_CREATE is on."""

from __future__ import annotations

import base64
import os
import tempfile
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from oversight.audit import verifier


def _create(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    # Readable by this user only. Written whole under a private name, then linked into
    # place: two processes starting at once keep one key (the second link fails), and
    # neither can read a half-written file.
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        os.link(draft, path)
    finally:
        os.unlink(draft)
    return key


def _load(pem: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{where} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{where} is not an Ed25519 key.")
    return key


@cache
def signing_key() -> Ed25519PrivateKey:
    if settings.AUDIT_SIGNING_KEY:
        return _load(settings.AUDIT_SIGNING_KEY.encode(), "AUDIT_SIGNING_KEY")
    path = Path(settings.AUDIT_SIGNING_KEY_FILE)
    if path.exists():
        return _load(path.read_bytes(), f"AUDIT_SIGNING_KEY_FILE ({path})")
    if not settings.AUDIT_SIGNING_KEY_CREATE:
        raise ImproperlyConfigured(
            "No audit signing key: set AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE "
            "(python manage.py audit_key creates one; see docs/audit-trust.md)."
        )
    try:
        return _create(path)
    except FileExistsError:
        return _load(path.read_bytes(), f"AUDIT_SIGNING_KEY_FILE ({path})")


def public_key_pem() -> str:
    public = signing_key().public_key()
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def key_id() -> str:
    return verifier.key_id(signing_key().public_key())


def sign(message: bytes) -> str:
    return base64.b64encode(signing_key().sign(message)).decode()


def new_key_pem() -> str:
    """A fresh private key as PEM, for an operator to store (``manage.py audit_key``)."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
