"""The agent-side Python SDK of Oversight: ask before acting.

    from oversight_sdk import Oversight, ActionDenied

    client = Oversight("https://oversight.example.com", token=os.environ["OVERSIGHT_TOKEN"])
    with client.guard("payments.refund", resource="stripe:charge/ch_1",
                      params={"amount": 20}) as g:
        g.after = stripe.refund("ch_1", 20)

Depends on the standard library and httpx only; nothing here imports Django or the rest
of Oversight, so it can be copied into, or installed in, any agent. See docs/sdk.md.
"""

from .aio import AsyncOversight
from .client import Oversight
from .compensation import CompensationOutcome, CompensationTask, NotReversible
from .errors import (
    ActionDenied,
    ActionEdited,
    ActionExpired,
    ActionFinished,
    ActionHalted,
    ActionNotPermitted,
    ActionNotStarted,
    ActionRejected,
    AgentUnavailable,
    APIError,
    ApprovalTimeout,
    AuthenticationError,
    Conflict,
    ConnectionFailed,
    DryRun,
    InvalidRequest,
    NotFound,
    OutcomeUnknown,
    OversightError,
    OversightUnavailable,
    RateLimited,
    ServerError,
)
from .guard import AsyncGuard, Guard, current_guard
from .models import (
    RUNNABLE,
    AgentInfo,
    Decision,
    Reason,
    Release,
    Status,
    ToolDefinition,
    ToolStatus,
    Vote,
)

__all__ = [
    "RUNNABLE",
    "APIError",
    "ActionDenied",
    "ActionEdited",
    "ActionExpired",
    "ActionFinished",
    "ActionHalted",
    "ActionNotPermitted",
    "ActionNotStarted",
    "ActionRejected",
    "AgentInfo",
    "AgentUnavailable",
    "ApprovalTimeout",
    "AsyncGuard",
    "AsyncOversight",
    "AuthenticationError",
    "CompensationOutcome",
    "CompensationTask",
    "Conflict",
    "ConnectionFailed",
    "Decision",
    "DryRun",
    "Guard",
    "InvalidRequest",
    "NotFound",
    "NotReversible",
    "OutcomeUnknown",
    "Oversight",
    "OversightError",
    "OversightUnavailable",
    "RateLimited",
    "Reason",
    "Release",
    "ServerError",
    "Status",
    "ToolDefinition",
    "ToolStatus",
    "Vote",
    "current_guard",
]
