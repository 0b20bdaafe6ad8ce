"""What every integration's conformance run shares: the tool, the world, a reviewer.

A driver (one module in drivers/, exposing DRIVER) builds one integration for a server
and an agent token, has the integration's own caller call the tool `refund` once, waits
as the integration waits for a held action, and tells what the caller saw as a `Seen`.
Drivers import from here with `from ..harness import Seen, refund_tool`. Each runs the
side effect through `refund_effect` (a declined charge raises), and asks through a
recording client (`RecordingOversight`, `AsyncRecordingOversight`), so that the action
is known even where the framework does not show it to its caller.

The world (the server's agents, policy and tokens) is made by the server's
tests/sdk/conformance_world.py and described by the JSON file OVERSIGHT_CONFORMANCE_WORLD
names.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from oversight_sdk import AsyncOversight, Decision, Oversight

WORLD_ENV = "OVERSIGHT_CONFORMANCE_WORLD"
# The tool through the SDK and the adapters, and through the MCP proxy (tool `refund` on
# the MCP server `payments`); one resource template for both.
REFUND_ACTION = "payments.refund"
MCP_REFUND_ACTION = "mcp.payments.refund"
MCP_SERVER, MCP_TOOL = "payments", "refund"
BLOCKED_CHARGE = "ch_blocked"  # the world forbids it; the reason names it "blocked"
HOLD_ABOVE = 100  # the world holds larger refunds for one approval, edits allowed
HOLD_WAIT = 60.0  # how long a driver waits for a held action to be decided
# The tool raises for charges starting so (after its attempt is recorded), with these words.
DECLINED_PREFIX = "ch_declined_"
DECLINED = "card_declined: the charge is disputed"


def refund_resource(charge: str) -> str:
    return f"stripe:charge/{charge}"


@dataclass
class Seen:
    """What one call through an integration did and showed its caller."""

    executed: list[dict[str, Any]]  # the arguments the side effect ran with (0 or 1 item)
    text: str  # what the caller was shown: the result, or the error/reason
    is_error: bool  # whether the caller was shown an error or refusal
    action_id: str | None  # the Oversight action it became, when the caller can know it


class Driver(Protocol):
    name: str

    def call(self, *, url: str, token: str, arguments: dict[str, Any]) -> Seen: ...


def refund_effect(executed: list[dict[str, Any]], charge: str, amount: int) -> dict[str, Any]:
    """The refund's side effect, recorded in `executed`; a declined charge raises after."""
    executed.append({"charge": charge, "amount": amount})
    if charge.startswith(DECLINED_PREFIX):
        raise RuntimeError(DECLINED)
    return {"refunded": amount, "charge": charge}


def refund_tool() -> tuple[Callable[[str, int], dict[str, Any]], list[dict[str, Any]]]:
    """A fresh `refund` tool and the list its side effect appends to."""
    executed: list[dict[str, Any]] = []

    def refund(charge: str, amount: int) -> dict[str, Any]:
        """Refund `amount` (in cents) of the Stripe charge `charge`."""
        return refund_effect(executed, charge, amount)

    return refund, executed


def new_charge(prefix: str = "ch_") -> str:
    """A charge no other call has used, so a reviewer can tell this call's action apart."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


class AskedIds:
    """The ids of the actions a client asked about, newest last: where the framework
    does not show its caller the action, a scenario still reads the server's record."""

    asked: list[str]

    def last_asked(self) -> str | None:
        return self.asked[-1] if self.asked else None


class RecordingOversight(Oversight, AskedIds):
    """The SDK's client, remembering each action it asked about (`ask` unchanged)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked = []

    def ask(self, *args: Any, **kwargs: Any) -> Decision:
        decision = super().ask(*args, **kwargs)
        self.asked.append(decision.id)
        return decision


class AsyncRecordingOversight(AsyncOversight, AskedIds):
    """The SDK's async client, remembering each action it asked about (`ask` unchanged)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked = []

    async def ask(self, *args: Any, **kwargs: Any) -> Decision:
        decision = await super().ask(*args, **kwargs)
        self.asked.append(decision.id)
        return decision


@dataclass(frozen=True)
class World:
    url: str
    token: str
    staging_token: str
    halted_token: str
    reviewer_token: str
    agent: str

    @classmethod
    def from_env(cls) -> World | None:
        path = os.environ.get(WORLD_ENV)
        if not path:
            return None
        data = json.loads(Path(path).read_text())
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})

    def action(self, action_id: str, token: str | None = None) -> Decision:
        """The server's record of one of the agent's actions (through the SDK), read with
        ``token`` (default: the production one)."""
        with Oversight(self.url, token or self.token, retries=1) as client:
            return client.get(action_id)


@dataclass
class ReviewerVote:
    """A reviewer's vote, cast from another thread once the call's action is held."""

    vote: str  # "approve" | "deny"
    comment: str = ""
    params: dict[str, Any] | None = None
    action_id: str | None = None  # the held action voted on
    answer: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None


class Reviewer:
    """The world's reviewer, deciding held actions through the approvals API with her
    personal token (`GET /api/v1/approvals`, `POST /api/v1/approvals/{id}/vote`)."""

    def __init__(self, world: World, timeout: float = 30.0) -> None:
        self.world = world
        self.timeout = timeout

    def _http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.world.url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {self.world.reviewer_token}"},
            timeout=10,
        )

    def held(self, resource: str) -> list[dict[str, Any]]:
        with self._http() as http:
            response = http.get("/approvals")
            response.raise_for_status()
            return [a for a in response.json() if a["resource"] == resource]

    def vote_when_held(self, resource: str, vote: ReviewerVote) -> threading.Thread:
        """Start a thread that waits for the held action on `resource` and casts `vote`;
        join it, then look at `vote.action_id`, `vote.answer` and `vote.error`."""

        def run() -> None:
            try:
                self._vote_when_held(resource, vote)
            except BaseException as exc:  # handed to the test thread
                vote.error = exc

        thread = threading.Thread(target=run, name=f"reviewer {resource}", daemon=True)
        thread.start()
        return thread

    def _vote_when_held(self, resource: str, vote: ReviewerVote) -> None:
        deadline = time.monotonic() + self.timeout
        while not (held := self.held(resource)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no held action on {resource} in {self.timeout}s")
            time.sleep(0.1)
        assert len(held) == 1, held
        vote.action_id = str(held[0]["id"])
        # An approval says which version of the action it approves (the one listed).
        body: dict[str, Any] = {
            "vote": vote.vote,
            "comment": vote.comment,
            "request_hash": held[0]["request_hash"],
        }
        if vote.params is not None:
            body["params"] = vote.params
        with self._http() as http:
            response = http.post(f"/approvals/{vote.action_id}/vote", json=body)
            if response.status_code != 200:
                raise AssertionError(f"vote refused: {response.status_code} {response.text}")
            vote.answer = response.json()
