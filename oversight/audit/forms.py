from __future__ import annotations

from typing import Any

from django import forms

from oversight.agents.selectors import agents_with_perm
from oversight.audit.selectors import AuditFilters
from oversight.audit.verbs import KNOWN_VERBS, matching


class AuditFilterForm(forms.Form):
    agent = forms.ChoiceField(required=False)
    actor = forms.CharField(
        required=False, max_length=200, help_text="username, agent:slug or system:name"
    )
    verb = forms.CharField(
        required=False, max_length=64, help_text="a verb, or a noun for all of its verbs"
    )
    since = forms.DateTimeField(
        label="From", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    # The page link's cursor: the event before which the page starts (not typed by anyone).
    before = forms.IntegerField(
        label="Page link",
        required=False,
        min_value=1,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": "it names no event; start again from the newest events.",
            "min_value": "it names no event; start again from the newest events.",
        },
    )

    known_verbs = KNOWN_VERBS

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        slugs = agents_with_perm(user=user).order_by("slug").values_list("slug", "name")
        self.fields["agent"].choices = [("", "Any agent"), *slugs]

    def clean_verb(self) -> str:
        return (self.cleaned_data.get("verb") or "").strip().lower()  # verbs are lower case

    def unknown_verb(self) -> str:
        """The verb filtered for, when Oversight records no such verb (nor a noun's): the
        empty results say so. Not an error: the log may hold verbs no longer made."""
        verb = (self.cleaned_data.get("verb") or "") if self.is_valid() else ""
        return verb if verb and verb not in KNOWN_VERBS and matching(verb) == [verb] else ""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            raise forms.ValidationError("“From” must be before “until”.")
        return data

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        return AuditFilters(
            agent=data.get("agent") or "",
            actor=(data.get("actor") or "").strip(),
            verb=(data.get("verb") or "").strip(),
            since=data.get("since"),
            until=data.get("until"),
        )


class BundleForm(AuditFilterForm):
    """An evidence bundle's scope: the filter form's agent and time range. Prefixed, as
    it shares the audit page with the filter form."""

    prefix = "bundle"
    actor = None
    verb = None
    before = None
