"""The compensator's side of the agent API: take the runnable compensations (long-poll),
report each one's outcome. Agent tokens, as every endpoint under /api/v1/."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja import Field, Query, Router
from pydantic import field_validator

from oversight.agents.models import AgentToken
from oversight.gateway.constants import MAX_WAIT_SECONDS
from oversight.gateway.exceptions import ConflictError
from oversight.gateway.json_safety import NO_NUL, StorableJson, check_json
from oversight.gateway.models import Action
from oversight.gateway.schemas import API_ERRORS, Body
from oversight.lib.long_poll import poll
from oversight.rewind import services

router = Router(tags=["compensations"])
_POLL_SECONDS = 0.5


class OriginalOut(Body):
    id: uuid.UUID
    action: str
    resource: str
    params: dict[str, Any]
    before: Any = None
    after: Any = Field(None, description="The state the agent reported after the action.")


class CompensationOut(Body):
    id: uuid.UUID = Field(description="The compensation's own action id: report to it.")
    action: str = Field(description="The undo action to run.")
    resource: str
    params: dict[str, Any] = Field(description="The undo's params, from the grant's contract.")
    original: OriginalOut


class CompensationResultIn(Body):
    outcome: Literal["undone", "conflict", "not_reversible", "failed", "skipped"] = Field(
        description=(
            "`undone`: it ran; `conflict`: the state found was not the recorded after-state,"
            " nothing was changed; `not_reversible`, `failed`, `skipped`: it did not undo."
        )
    )
    found: StorableJson = Field(None, description="The state the compensator read first.")
    left: StorableJson = Field(None, description="The state it left (undone only).")
    detail: str = Field("", max_length=5000, json_schema_extra={"pattern": NO_NUL})

    @field_validator("found", "left", "detail", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return check_json(value)


class CompensationDoneOut(Body):
    id: uuid.UUID
    status: str = Field(description="The compensation's status: succeeded when undone.")
    outcome: str
    original_status: str = Field(description="`rolled_back` when the undo restored it.")


class CompensationReportIn(CompensationResultIn):
    id: uuid.UUID = Field(description="The compensation's id.")


class CompensationReportsIn(Body):
    results: list[CompensationReportIn] = Field(
        min_length=1,
        max_length=services.MAX_REPORTS,
        description="One outcome per compensation, each compensation once.",
    )


class ReportErrorOut(Body):
    code: str = Field(description="`not_found`, `already_reported` or `not_runnable`.")
    message: str


class CompensationReportedOut(Body):
    id: uuid.UUID
    status: str = Field("", description="As a single report answers; empty when refused.")
    outcome: str = ""
    original_status: str = ""
    error: ReportErrorOut | None = Field(
        None, description="Why this report was not taken (nothing of it was written)."
    )


class CompensationsReportedOut(Body):
    results: list[CompensationReportedOut] = Field(description="In the order reported.")


def _out(compensation: Action) -> dict[str, Any]:
    original = compensation.compensates
    return {
        "id": compensation.pk,
        "action": compensation.action,
        "resource": compensation.resource,
        "params": compensation.params,
        "original": {
            "id": original.pk,
            "action": original.action,
            "resource": original.resource,
            "params": original.params,
            "before": original.before,
            "after": original.after,
        },
    }


@router.get(
    "",
    response={200: list[CompensationOut], **API_ERRORS},
    summary="Take the compensations to run",
    operation_id="take_compensations",
)
async def take_compensations(
    request: HttpRequest,
    wait: float = Query(0, ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for one."),
) -> list[dict[str, Any]]:
    """The agent's runnable compensations (allowed, or approved by a reviewer), newest
    original first, each held for this caller for five minutes; with `wait`, long-polls
    until there is one. Read the state first: if it is not `original.after`, report
    `conflict` and change nothing."""
    claim = sync_to_async(services.compensations_claim)
    found = await poll(lambda: claim(token=request.auth), bool, wait=wait, every=_POLL_SECONDS)
    return [_out(c) for c in found]


@router.post(
    "/{compensation_id}/result",
    response={200: CompensationDoneOut, **API_ERRORS},
    summary="Report a compensation's outcome",
    operation_id="report_compensation",
)
def report_compensation(
    request: HttpRequest, compensation_id: uuid.UUID, payload: CompensationResultIn
) -> dict[str, Any]:
    """Once. The original is shown as rolled back only when `undone` left `original.before`."""
    return compensation_result_answer(request.auth, compensation_id, payload)


@router.post(
    "/results",
    response={200: CompensationsReportedOut, **API_ERRORS},
    summary="Report the outcomes of several compensations",
    operation_id="report_compensations",
)
def report_compensations(request: HttpRequest, payload: CompensationReportsIn) -> dict[str, Any]:
    """A batch, as a worker runs what it took: each report is taken once, as the single
    report takes it, in one transaction. One that cannot be taken (not found, already
    reported, earlier in the same batch too) is answered with its error beside the others
    and writes nothing."""
    reports = [
        (r.id, services.Report(r.outcome, r.found, r.left, r.detail)) for r in payload.results
    ]
    done = services.compensations_report(token=request.auth, reports=reports)
    return {"results": [_reported(d) for d in done]}


def _reported(done: services.Reported) -> dict[str, Any]:
    if done.error is not None:
        code = done.error.code if isinstance(done.error, ConflictError) else "not_found"
        return {"id": done.id, "error": {"code": code, "message": str(done.error)}}
    return _done(done.compensation)


def _done(compensation: Action) -> dict[str, Any]:
    return {
        "id": compensation.pk,
        "status": compensation.status,
        "outcome": compensation.compensation_outcome,
        "original_status": compensation.compensates.status,  # read by the report
    }


def compensation_result_answer(
    token: AgentToken, compensation_id: uuid.UUID, payload: CompensationResultIn
) -> dict[str, Any]:
    """The report's work and answer, for this view and the fast lane (gateway/fastlane.py)."""
    report = services.Report(**payload.model_dump())
    done = services.compensation_report(token=token, action_id=compensation_id, report=report)
    return _done(done)
