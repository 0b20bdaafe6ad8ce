"""Choosing what to rewind, and starting the plan that was shown."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone

from oversight.lib.moments import MomentError, parse_moment


class RewindForm(forms.Form):
    since = forms.CharField(
        initial="10m", max_length=40, help_text="10m, 2h, 7d, or a date or time (UTC)."
    )
    until = forms.CharField(required=False, max_length=40, help_text="Empty: now.")
    release = forms.IntegerField(required=False, min_value=1, label="Only release")
    session = forms.CharField(required=False, max_length=100, label="Only session")
    resource = forms.CharField(
        initial="*", required=False, max_length=500, label="Resource pattern", help_text="Empty: *."
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        now = timezone.now()  # one moment for both bounds: "3m" and an empty until agree
        try:
            data["since_at"] = parse_moment(data.get("since", ""), now=now)
            until = data.get("until")
            data["until_at"] = parse_moment(until, now=now) if until else now
        except MomentError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


class RewindStartForm(RewindForm):
    """The start of a plan that was shown: its window as the absolute bounds the plan
    resolved (see ``start_fields``), and what the plan said it would undo and cancel."""

    planned_to_undo = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    planned_to_cancel = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)


def start_fields(plan: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The hidden fields of a plan's start button: the window as the plan resolved it
    (ISO timestamps, to the microsecond: "3m" is read once, when planning, not again at
    the start), the same filters, and the plan's counts."""
    return {
        "since": plan["since"].isoformat(),
        "until": plan["until"].isoformat(),
        "release": data.get("release") or "",
        "session": data.get("session") or "",
        "resource": data.get("resource") or "*",
        "planned_to_undo": plan["to_undo"],
        "planned_to_cancel": plan["to_cancel"],
    }
