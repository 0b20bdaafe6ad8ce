"""Forms of the incident pages: handling one, a note, and opening one by hand."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from oversight.incidents.models import Incident, IncidentStatus
from oversight.incidents.services import MAX_NOTE


class IncidentUpdateForm(forms.Form):
    status = forms.ChoiceField(choices=IncidentStatus.choices)
    owner = forms.ModelChoiceField(queryset=None, required=False, empty_label="Nobody yet")

    def __init__(self, *args: Any, incident: Incident, users: QuerySet[Any], **kwargs: Any):
        kwargs.setdefault("initial", {"status": incident.status, "owner": incident.owner_id})
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = users


class NoteForm(forms.Form):
    body = forms.CharField(
        max_length=MAX_NOTE, widget=forms.Textarea(attrs={"rows": 3}), label="Add a note"
    )


class IncidentOpenForm(forms.Form):
    """What opening one by hand was given; ``selectors.incident_opened_from`` checks the
    action or alert belongs to the agent."""

    agent = forms.SlugField(max_length=100)
    title = forms.CharField(max_length=200, required=False)
    action = forms.UUIDField(required=False)
    alert = forms.IntegerField(required=False, min_value=1)
