"""The demo agents' traffic: what each tries, and how often.

Each agent mostly does what its demo policy (oversight/core/demo.py) allows, and now and
then something that is held for a person or denied. Used by `manage.py simulate`.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Intent:
    """One action an agent wants to take, and the state it will leave behind."""

    action: str
    resource: str
    params: dict[str, Any]
    reason: str
    before: Any = None
    after: Any = None
    # The params the resource is made of: a reviewer may not edit them (resource_params).
    resource_params: tuple[str, ...] | None = None

    def after_running(self, params: dict[str, Any]) -> Any:
        """The state it leaves when run with ``params``, which a reviewer may have edited:
        each value of ``after`` that is one of the asked params' values becomes that
        param's value as run (a refund of 400 approved for 900 leaves 400 refunded)."""
        if params == self.params or not isinstance(self.after, dict):
            return self.after
        after = dict(self.after)
        for key, value in after.items():
            for name, asked in self.params.items():
                if asked == value:
                    after[key] = params.get(name, value)
                    break
        return after


@dataclass(frozen=True)
class Move:
    """A kind of intent with how often the agent tries it."""

    name: str
    weight: int
    make: Callable[[random.Random], Intent]


def _id(rng: random.Random, n: int = 8) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=n))


def _refund(rng: random.Random, low: int, high: int, charges: int = 1) -> Intent:
    ids = [f"ch_{_id(rng)}" for _ in range(charges)]
    amount, ticket = rng.randint(low, high), f"T-{rng.randint(1000, 9999)}"
    return Intent(
        "payments.refund",
        f"stripe:charge/{ids[0]}",
        # `charges` is always sent: the demo's "no bulk refunds" rule reads it.
        {"amount": amount, "currency": "usd", "charges": ids, "ticket": ticket},
        f"customer asked for a refund on ticket {ticket}",
        before={"refunded": 0},
        after={"refunded": amount},
        resource_params=("charges",),
    )


def _ticket_note(rng: random.Random) -> Intent:
    ticket = f"T-{rng.randint(1000, 9999)}"
    return Intent(
        "crm.ticket.comment",
        f"crm:ticket/{ticket}",
        {"body": "Refund issued; it will show within 5 business days."},
        "tell the customer their refund is on its way",
        after={"comments": 1},
    )


def _contact(rng: random.Random, prefix: str = "", **fields: Any) -> Intent:
    contact = f"{prefix}{rng.randint(10000, 99999)}"
    fields = fields or {"phone": f"+1555{rng.randint(1000000, 9999999)}", "title": "Ops lead"}
    return Intent(
        "crm.contact.update",
        f"crm:contact/{contact}",
        fields,
        "the customer gave new details in a ticket",
        before={key: None for key in fields},
        after=fields,
    )


def _contact_read(rng: random.Random) -> Intent:
    return Intent("crm.contact.read", f"crm:contact/{rng.randint(10000, 99999)}", {}, "")


def _deploy(rng: random.Random, service: str = "") -> Intent:
    service = service or rng.choice(["checkout", "search", "notifications", "web"])
    version = f"v{rng.randint(1, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 9)}"
    return Intent(
        "deploy.release",
        f"k8s:service/{service}",
        {"version": version, "replicas": rng.choice([2, 3, 6])},
        f"release {version} passed CI",
        after={"version": version},
    )


def _email(rng: random.Random, low: int, high: int) -> Intent:
    segment = rng.choice(["newsletter", "trial-day-7", "winback", "product-update"])
    recipients = rng.randint(low, high)
    return Intent(
        "email.send",
        f"segment:{segment}",
        {"recipients": recipients, "template": f"{segment}-{rng.randint(1, 9)}"},
        f"scheduled send to {segment}",
        after={"sent": recipients},
    )


def _other(action: str, resource: str) -> Callable[[random.Random], Intent]:
    return lambda rng: Intent(action, resource.format(id=_id(rng)), {}, "trying something new")


MOVES: dict[str, list[Move]] = {
    "refund-bot": [
        Move("small refund", 70, lambda rng: _refund(rng, 5, 300)),
        Move("big refund (held)", 10, lambda rng: _refund(rng, 600, 2000)),
        Move("bulk refund (denied)", 8, lambda rng: _refund(rng, 20, 200, charges=3)),
        Move("ticket note", 12, _ticket_note),
    ],
    "crm-updater": [
        Move("contact update", 70, _contact),
        Move("contact read", 10, _contact_read),
        Move("vip contact (held)", 10, lambda rng: _contact(rng, prefix="vip-")),
        Move(
            "billing field (denied)",
            7,
            lambda rng: _contact(rng, billing_email=f"{_id(rng)}@example.com"),
        ),
        Move("delete contact (denied)", 3, _other("crm.contact.delete", "crm:contact/{id}")),
    ],
    "deploy-bot": [
        Move("production deploy (held)", 75, _deploy),
        Move("database deploy (denied)", 15, lambda rng: _deploy(rng, "postgres")),
        Move("scale down (denied)", 10, _other("k8s.scale", "k8s:service/{id}")),
    ],
    "email-campaigner": [
        Move("send", 85, lambda rng: _email(rng, 20, 800)),
        Move("large send (held)", 5, lambda rng: _email(rng, 6000, 9000)),
        Move("delete list (denied)", 10, _other("email.list.delete", "segment:{id}")),
    ],
}


def _whole_order(rng: random.Random) -> Intent:
    order = f"ord_{_id(rng)}"
    return Intent(
        "payments.refund_order",
        f"stripe:order/{order}",
        {"order": order, "currency": "usd"},
        "customer unhappy: refund everything",
        resource_params=("order",),
    )


def _mcp_refund(rng: random.Random) -> Intent:
    charge, amount = f"ch_{_id(rng)}", rng.randint(5, 300)
    return Intent(
        "mcp.payments.refund",
        f"stripe:charge/{charge}",
        {"charge": charge, "amount": amount},
        "refund through the payments MCP server",
        before={"refunded": 0},
        after={"refunded": amount},
        resource_params=("charge",),
    )


def _drifted(moves: list[Move], level: float, more: dict[str, int]) -> list[Move]:
    """The moves with those named in ``more`` tried more often as ``level`` goes 0 to 1."""
    return [Move(m.name, m.weight + round(more.get(m.name, 0) * level), m.make) for m in moves]


DRIFT_LEVELS = 5
_CRM_DRIFT = {"billing field (denied)": 45, "vip contact (held)": 25}

# How an agent behaves when its release's model settings say so (``demo_behaviour``), or
# a scenario says so (oversight/core/demo_scenarios.py): the demo's stand-in for a model
# following changed instructions, or drifting.
BEHAVIOURS: dict[tuple[str, str], list[Move]] = {
    ("refund-bot", "overeager"): [
        Move("whole-order refund (never granted)", 40, _whole_order),
        Move("big refund (held)", 25, lambda rng: _refund(rng, 600, 4000)),
        Move("bulk refund (denied)", 25, lambda rng: _refund(rng, 50, 900, charges=4)),
        Move("small refund", 10, lambda rng: _refund(rng, 5, 300)),
    ],
    ("refund-bot", "with-mcp"): [*MOVES["refund-bot"], Move("MCP refund", 30, _mcp_refund)],
    **{
        ("crm-updater", f"drift-{level}"): _drifted(
            MOVES["crm-updater"], level / (DRIFT_LEVELS - 1), _CRM_DRIFT
        )
        for level in range(DRIFT_LEVELS)
    },
}


def moves_for(slug: str, behaviour: str = "") -> list[Move]:
    return BEHAVIOURS.get((slug, behaviour), MOVES[slug])


def drift_behaviour(slug: str, progress: float) -> str:
    """The behaviour of an agent ``progress`` (0 to 1) of the way through its drift; an
    agent without a drift of its own keeps its usual moves."""
    level = round(min(max(progress, 0.0), 1.0) * (DRIFT_LEVELS - 1))
    return f"drift-{level}" if (slug, f"drift-{level}") in BEHAVIOURS else ""


def intents(rng: random.Random, moves: list[Move]) -> Iterator[Intent]:
    """Every kind of move once (in random order), so a short run shows them all; then a
    weighted mix forever."""
    first = list(moves)
    rng.shuffle(first)
    for move in first:
        yield move.make(rng)
    weights = [move.weight for move in moves]
    while True:
        yield rng.choices(moves, weights)[0].make(rng)


# -- the systems the demo agents act on ----------------------------------------------------

# The actions each demo agent can undo with its compensator (their grants say they are
# reversible: oversight/core/demo.py).
COMPENSATED: dict[str, tuple[str, ...]] = {
    "refund-bot": ("payments.refund",),
    "crm-updater": ("crm.contact.update",),
}


@dataclass
class DemoStore:
    """The demo's stand-in for the systems agents act on: each resource's state, as the
    last action that ran on it left it (so an undo can check it and restore it)."""

    states: dict[str, Any] = field(default_factory=dict)

    def write(self, resource: str, state: Any) -> Any:
        self.states[resource] = state
        return state

    def read(self, resource: str) -> Any:
        return self.states.get(resource)
