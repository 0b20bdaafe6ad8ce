"""The approval queue's filters and view, read from the query string; and the form an
owner settles an unreported action with."""

from __future__ import annotations

from typing import Any

from django import forms

from oversight.approvals.selectors import QueueFilters, queue_filter_choices
from oversight.gateway.settling import NOTE_MAX, OUTCOMES
from oversight.lib.paging import page_number

CARDS, LIST = "cards", "list"


class QueueFilterForm(forms.Form):
    """Filters are free text under select widgets (as the registry's): a value the person
    has no choice for (an old link, another team's slug) matches nothing rather than
    being dropped, so the page never shows more than its address says."""

    agent = forms.CharField(required=False, label="Agent")
    team = forms.CharField(required=False, label="Team")
    risk = forms.CharField(required=False, label="Risk")
    view = forms.CharField(
        required=False,
        label="Show as",
        widget=forms.RadioSelect(choices=[(CARDS, "Cards"), (LIST, "Compact list")]),
    )
    page = forms.CharField(required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = queue_filter_choices(user=user)
        selected = self.data.get("agent", "") if self.is_bound else ""
        agents = choices["agent"]
        if selected and selected not in {slug for slug, _name in agents}:
            agents = [*agents, (selected, selected)]  # keeps the address's choice on screen
        self.fields["agent"].widget = forms.Select(choices=[("", "Any agent"), *agents])
        self.fields["team"].widget = forms.Select(choices=[("", "Any team"), *choices["team"]])
        self.fields["risk"].widget = forms.Select(choices=[("", "Any risk"), *choices["risk"]])

    def _value(self, name: str) -> str:
        return self.cleaned_data.get(name, "") if self.is_bound and self.is_valid() else ""

    def filters(self) -> QueueFilters:
        if not self.is_bound or not self.is_valid():
            return QueueFilters()
        data = self.cleaned_data
        return QueueFilters(**{key: data[key].strip() for key in ("agent", "team", "risk")})

    def chosen_view(self) -> str:
        return LIST if self._value("view") == LIST else CARDS

    def page_number(self) -> int:
        return page_number(self._value("page"))


class SettleForm(forms.Form):
    """What an owner found happened to an action its agent never reported. Only the
    input's shape here (Django's own NUL check, the widgets); gateway/settling.py judges
    it, and its refusals come back onto these fields."""

    outcome = forms.CharField(
        required=False,
        label="What happened",
        widget=forms.RadioSelect(choices=list(OUTCOMES.items()), attrs={"required": True}),
    )
    note = forms.CharField(
        required=False,
        strip=False,  # the service strips it, after joining the browser's CRLF line breaks
        label="What you checked",
        widget=forms.Textarea(
            attrs={
                "rows": 2,
                "maxlength": NOTE_MAX,
                "required": True,
                "placeholder": "The refund re_3Q… exists in Stripe, for 40.00 EUR",
            }
        ),
    )
