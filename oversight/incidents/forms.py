"""Forms of the incident pages: handling one, a note, and opening one by hand."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.db.models import QuerySet

from oversight.agents.models import Agent
from oversight.gateway.models import Action
from oversight.incidents.models import Incident, IncidentStatus, TriggerKind
from oversight.incidents.services import MAX_NOTE
from oversight.monitoring.models import Alert


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
    agent = forms.SlugField(max_length=100)
    title = forms.CharField(max_length=200, required=False)
    action = forms.UUIDField(required=False)
    alert = forms.IntegerField(required=False, min_value=1)

    def trigger(self, agent: Agent) -> dict[str, Any]:
        """What it is opened from: the action or alert (of this agent), else the agent."""
        data = self.cleaned_data
        action_id: uuid.UUID | None = data.get("action")
        alert_id: int | None = data.get("alert")
        title = data.get("title") or ""
        if action_id and Action.objects.filter(pk=action_id, agent=agent).exists():
            action = Action.objects.get(pk=action_id)
            summary = f"Opened from {action.action} on {action.resource}"
            target = ("gateway.action", str(action_id))
        elif alert_id and Alert.objects.filter(pk=alert_id, agent=agent).exists():
            alert = Alert.objects.get(pk=alert_id)
            summary = f"Opened from the alert: {alert.title}"
            target = ("monitoring.alert", str(alert_id))
        else:
            summary = f"Opened for {agent.name}"
            target = ("agents.agent", str(agent.pk))
        return {
            "kind": TriggerKind.MANUAL,
            "target": target,
            "summary": summary,
            "title": title or summary,
        }
