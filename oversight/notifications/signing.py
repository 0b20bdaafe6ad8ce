"""HMAC-SHA256 signatures of webhook bodies: ``X-Oversight-Signature: sha256=<hex>``."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def signature_header(body: bytes, secret: str) -> str:
    """The header value for ``body``: the hex HMAC-SHA256 of the exact bytes sent."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, secret: str, header: str) -> bool:
    """What a receiver does; constant-time, so the comparison leaks nothing."""
    return hmac.compare_digest(signature_header(body, secret), header)
