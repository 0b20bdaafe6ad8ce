"""The plain SDK: `guard` around the tool, as an agent's own code would call it."""

from __future__ import annotations

import json
from typing import Any

from oversight_sdk import ActionNotPermitted

from ..harness import (
    HOLD_WAIT,
    REFUND_ACTION,
    RecordingOversight,
    Seen,
    refund_resource,
    refund_tool,
)


class SdkDriver:
    name = "sdk"

    def call(self, *, url: str, token: str, arguments: dict[str, Any]) -> Seen:
        refund, executed = refund_tool()
        resource = refund_resource(arguments["charge"])
        with RecordingOversight(url, token, wait_timeout=HOLD_WAIT) as client:
            guard = client.guard(
                REFUND_ACTION, resource=resource, params=arguments, accept_edits=True
            )
            try:
                with guard as g:
                    g.after = refund(**g.params)  # as approved: maybe edited by a reviewer
            except ActionNotPermitted as exc:
                return Seen(executed, str(exc), is_error=True, action_id=exc.action_id)
            except RuntimeError as exc:  # the tool raised; the guard reported it failed
                return Seen(executed, str(exc), is_error=True, action_id=client.last_asked())
        if g.report_error is not None:
            return Seen(executed, str(g.report_error), is_error=True, action_id=g.action_id)
        # As an agent's own code shows the model the answer, with the approval's note.
        text = "\n".join([json.dumps(g.after), *([g.approval_note] if g.approval_note else [])])
        return Seen(executed, text, is_error=False, action_id=g.action_id)


DRIVER = SdkDriver()
