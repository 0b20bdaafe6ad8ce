"""Errors of the gateway's services, each with the HTTP status the API answers."""

from __future__ import annotations


class ConflictError(Exception):
    """HTTP 409: a lost race, a reused idempotency key, or a transition not allowed.
    ``code`` tells clients which, without parsing the message."""

    def __init__(self, message: str, code: str = "conflict") -> None:
        super().__init__(message)
        self.code = code


class NotFoundError(Exception):
    """HTTP 404: no such action for this agent (another agent's looks the same)."""


class InvalidInputError(Exception):
    """HTTP 422 for input that is well-formed but refers to something that is not there."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class UnauthenticatedError(Exception):
    """HTTP 401: the token is unknown or was revoked (found when reading it again)."""
