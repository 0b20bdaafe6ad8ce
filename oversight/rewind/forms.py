"""Choosing what to rewind."""

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
    resource = forms.CharField(initial="*", max_length=500, label="Resource pattern")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            data["since_at"] = parse_moment(data.get("since", ""))
            until = data.get("until")
            data["until_at"] = parse_moment(until) if until else timezone.now()
        except MomentError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data
