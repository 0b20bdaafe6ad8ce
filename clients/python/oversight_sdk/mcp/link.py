"""A held call's approval page, shown through URL elicitation (MCP 2025-11-25).

When the client declared `elicitation.url`, the proxy sends it an `elicitation/create` in
URL mode as soon as a call is held: the client shows the person the approval page's link
at once, instead of only in the answer after the wait. The elicitation's id is the
action's id. Whatever the person answers (open, decline, dismiss) changes nothing: the
call goes on when a reviewer decides it in Oversight, and then the proxy sends
`notifications/elicitation/complete`. A client that cannot take the request (no
back-channel, as on protocol 2026-07-28; an error) is left alone; the call's answer
carries the link as always.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


class ElicitedLink:
    """`proxy.ApprovalLink` over the MCP server session of the call (its `ctx.session`)."""

    def __init__(self, session: Any, request_id: Any) -> None:
        self.session = session
        self.request_id = request_id  # the tools/call's, so HTTP sends it on its stream
        self.shown = False

    @classmethod
    def for_client(cls, session: Any, request_id: Any) -> ElicitedLink | None:
        """A link when the client declared URL elicitation and this call's channel can
        carry a request to it (not on protocol 2026-07-28, whose elicitations end the
        call as input-required results), else None."""
        capabilities = session.client_capabilities
        elicitation = capabilities.elicitation if capabilities else None
        if elicitation is None or elicitation.url is None or not session.can_send_request:
            return None
        return cls(session, request_id)

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
