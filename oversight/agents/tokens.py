"""Agent credentials: high-entropy bearer tokens, stored only as SHA-256.

A token looks like ``ovs_prod_<43 url-safe characters>`` (256 random bits). SHA-256 without
a salt is right for random tokens of this size: there is nothing to guess, and the hash can
be looked up through a unique index.
"""

from __future__ import annotations

import hashlib
import secrets

from oversight.agents.constants import Environment

_ENV_TAGS = {Environment.STAGING: "stg", Environment.PRODUCTION: "prod"}
PREFIX_LENGTH = 6  # random characters shown after the tag, to tell tokens apart


def generate(environment: str) -> str:
    return f"ovs_{_ENV_TAGS[Environment(environment)]}_{secrets.token_urlsafe(32)}"


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def visible_prefix(raw: str) -> str:
    tag_end = raw.index("_", 4) + 1
    return raw[: tag_end + PREFIX_LENGTH]
