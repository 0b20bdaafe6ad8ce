"""A held call's approval page, shown to the person at the MCP client through URL
elicitation, as soon as the call is held.

Which way depends on the protocol the client speaks, and only clients that declared
`elicitation.url` are shown anything:

- **2025-11-25** (the initialize handshake): while the call waits, the proxy sends the
  client an `elicitation/create` in URL mode (`ElicitedLink`), its id the action's id.
  Whatever the person answers (open, decline, dismiss) changes nothing: the call goes on
  when a reviewer decides in Oversight, and the proxy then sends
  `notifications/elicitation/complete`. When the wait runs out first the request is
  withdrawn.
- **2026-07-28**, where a server sends no request during a call: the held call is
  answered at once with an input-required result carrying the same elicitation
  (`InputRequiredLink`). The client shows it and calls again with the person's answer;
  that call finds the same held action (by its idempotency key) and waits for the
  decision as any call does.

A client that cannot take the link (no back-channel, an error) is left alone; the call's
answer carries the link as always.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

logger = logging.getLogger(__name__)

INPUT_KEY = "oversight_approval"  # the input request's key in an input-required result


def approval_link(
    ctx: Any, params: types.CallToolRequestParams
) -> ElicitedLink | InputRequiredLink | None:
    """The `proxy.ApprovalLink` for this tools/call (its server request context), or
    None: a client that did not declare URL elicitation, or a call that answers one."""
    session = ctx.session
    capabilities = session.client_capabilities
    elicitation = capabilities.elicitation if capabilities else None
    if elicitation is None or elicitation.url is None or params.input_responses:
        return None
    if session.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return InputRequiredLink()
    if session.can_send_request:
        return ElicitedLink(session, ctx.request_id)
    return None


class ElicitedLink:
    """2025-11-25: an `elicitation/create` sent while the call waits."""

    def __init__(self, session: Any, request_id: Any) -> None:
        self.session = session
        self.request_id = request_id  # the tools/call's, so HTTP sends it on its stream
        self.shown = False

    def answer_now(self, *, url: str, action_id: str, message: str) -> None:
        return None  # the call waits; `show` runs meanwhile

    async def show(self, *, url: str, action_id: str, message: str) -> None:
        self.shown = True
        try:
            await self.session.elicit_url(
                message=message,
                url=url,
                elicitation_id=action_id,
                related_request_id=self.request_id,
            )
        except Exception as exc:  # the answer carries the link anyway
            logger.debug("the client did not take the approval link: %s", exc)

    async def decided(self, action_id: str) -> None:
        if not self.shown:
            return
        try:
            await self.session.send_elicit_complete(action_id, related_request_id=self.request_id)
        except Exception as exc:
            logger.debug("could not tell the client the approval is done: %s", exc)


class InputRequiredLink:
    """2026-07-28: the held call answered at once with the elicitation to show."""

    def answer_now(self, *, url: str, action_id: str, message: str) -> types.InputRequiredResult:
        # No elicitation id: 2026-07-28 has none (nor a notice of completion).
        request = types.ElicitRequest(params=types.ElicitRequestURLParams(message=message, url=url))
        return types.InputRequiredResult(input_requests={INPUT_KEY: request})

    async def show(self, *, url: str, action_id: str, message: str) -> None:
        return None

    async def decided(self, action_id: str) -> None:
        return None
