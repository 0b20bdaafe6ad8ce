"""Compensations run by a signed webhook: the agent's own, else its team's.

Each runnable compensation of such an agent is taken with a short lease and POSTed,
signed (HMAC-SHA256 of the exact body under the team's webhook secret, as notifications
are: docs/notifications.md), to the team's compensation webhook. The receiver does what
an SDK compensator does (read the state; if it is not ``original.after``, answer
``conflict`` and change nothing; else undo) and answers 200 with
``{"outcome", "found", "left", "detail"}``. Anything else (no answer, an error status, a
body that is not such an answer) is retried when the lease runs out, RETRY later.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any

import httpx
from django.core.exceptions import ValidationError
from django.db.models import F, Q

from oversight.agents.models import Agent
from oversight.audit.actors import Actor
from oversight.gateway.models import Action
from oversight.notifications.constants import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)
from oversight.notifications.signing import signature_header
from oversight.notifications.webhook_http import webhook_post
from oversight.rewind.services import (
    OUTCOMES,
    Report,
    compensation_report_for,
    compensations_claim_for,
)

logger = logging.getLogger(__name__)
ACTOR = Actor.system("compensation webhook")
RETRY = dt.timedelta(seconds=30)  # the lease: a failed call is tried again after it


def task_body(compensation: Action) -> dict[str, Any]:
    """What a compensator is given (the same as GET /api/v1/compensations)."""
    original = compensation.compensates
    return {
        "id": str(compensation.pk),
        "agent": compensation.agent.slug,
        "action": compensation.action,
        "resource": compensation.resource,
        "params": compensation.params,
        "original": {
            "id": str(original.pk),
            "action": original.action,
            "resource": original.resource,
            "params": original.params,
            "before": original.before,
            "after": original.after,
        },
    }


def _answer(response: httpx.Response) -> Report:
    if response.status_code != 200:
        raise ValueError(f"HTTP {response.status_code}")
    data = response.json()
    if not isinstance(data, dict) or data.get("outcome") not in OUTCOMES:
        raise ValueError(f"no outcome among {', '.join(OUTCOMES)} in the answer")
    detail = data.get("detail") or ""
    return Report(data["outcome"], data.get("found"), data.get("left"), str(detail)[:5000])


def _call(url: str, secret: str, compensation: Action) -> Report:
    timestamp = int(time.time())
    body = json.dumps({**task_body(compensation), "timestamp": timestamp}).encode()
    response = webhook_post(
        url,
        body=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Oversight-Compensation/1",
            SIGNATURE_HEADER: signature_header(body, secret),
            TIMESTAMP_HEADER: str(timestamp),
        },
    )
    return _answer(response)


def _targets() -> list[tuple[Agent, str, str]]:
    """(agent, URL, secret) for every agent with a compensation webhook: its own, else its
    team's; signed with its team's webhook secret (an agent whose team has no channels
    row has no secret, and is left to its SDK worker)."""
    agents = (
        Agent.objects.filter(
            Q(compensation_webhook_url__gt="") | Q(team__channels__compensation_webhook_url__gt="")
        )
        .filter(team__channels__isnull=False)
        .annotate(
            team_url=F("team__channels__compensation_webhook_url"),
            secret=F("team__channels__webhook_secret"),
        )
    )
    return [(a, a.compensation_webhook_url or a.team_url, a.secret) for a in agents]


def compensations_by_webhook() -> dict[str, int]:
    """The beat job: runnable compensations to their agent's (or team's) webhook, once each."""
    done = failed = 0
    for agent, url, secret in _targets():
        for compensation in compensations_claim_for(agent_id=agent.pk, lease=RETRY):
            try:
                report = _call(url, secret, compensation)
            except (httpx.HTTPError, ValueError, ValidationError) as exc:
                logger.warning("compensation %s by webhook: %s", compensation.pk, exc)
                failed += 1
                continue
            compensation_report_for(
                agent=agent, actor=ACTOR, action_id=compensation.pk, report=report
            )
            done += 1
    return {"done": done, "failed": failed}
