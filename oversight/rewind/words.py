"""How a rewind's reason codes and outcomes read on its pages (the plan, the progress,
an action's undo panel). The codes are what is stored and counted (``undo_blocked``'s,
the compensators' outcomes, a decision's status); people read these words."""

from __future__ import annotations

from oversight.gateway.constants import ActionStatus

_WORDS = {
    # why an action is left as it is (undo_blocked)
    "already_undone": "already rolled back",
    "unknown": "reversibility unknown: its grant does not say",
    "read": "a read: nothing to undo",
    "irreversible": "irreversible",
    "no_compensation": "reversible, but its grant names no undo",
    "window_closed": "its undo window has closed",
    # how an undo ended (a compensator's outcome, or the runner's)
    "undone": "undone",
    "conflict": "conflict: changed since, left alone",
    "not_reversible": "not reversible after all",
    "failed": "the undo failed",
    "skipped": "skipped: no compensator for it",
    "refused": "refused",
    "gone": "its undo is gone",
    "error": "Oversight could not ask for its undo (an error, logged): left as it is",
    # an action that had not run when the rewind started
    "cancelled": "cancelled: it had not run",
    "ran_after_plan": "it ran after the plan was made: not in this rewind",
    "started": "started by the agent, its outcome not reported: it may have run, left as it is",
}


def undo_words(code: str) -> str:
    """``not_run:denied`` reads "never succeeded (denied)", ``cancel:pending`` "not run yet
    (waiting for approval): cancelled as the rewind starts"; a decision's status that
    ended an undo at once ("denied", "halted") reads as its undo's; "" stays ""."""
    if code in _WORDS:
        return _WORDS[code]
    kind, _, status = code.partition(":")
    if kind == "not_run":
        return f"never succeeded ({_status(status).lower()})"
    if kind == "cancel":
        return f"not run yet ({_status(status).lower()}): cancelled as the rewind starts"
    if code in ActionStatus.values:
        return f"undo {_status(code).lower()}"
    return code


def _status(status: str) -> str:
    try:
        return str(ActionStatus(status).label)
    except ValueError:
        return status
