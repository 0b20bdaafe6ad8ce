"""Incidents: something went wrong in a scope (an agent, a team or everything); what set it
off, who handles it, notes, and the analysis of what happened (analysis/)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from oversight.accounts.models import Team
from oversight.agents.models import Agent


class IncidentScope(models.TextChoices):
    AGENT = "agent", "Agent"
    TEAM = "team", "Team"
    GLOBAL = "global", "Everything"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    INVESTIGATING = "investigating", "Investigating"
    RESOLVED = "resolved", "Resolved"


class TriggerKind(models.TextChoices):
    KILL_SWITCH = "kill_switch", "Kill switch engaged"
    ALERT = "alert", "Critical alert"
    ROLLBACK = "rollback", "Rollout rolled back by its guard"
    COMPENSATION = "compensation", "Undo failed"
    MANUAL = "manual", "Opened by a person"


class AnalysisState(models.TextChoices):
    QUEUED = "queued", "Analysing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Incident(models.Model):
    """One incident. ``report`` is the analysis (timeline, break point, ranked causes,
    blast radius) as JSON, written by ``services.incident_analyse`` and recomputed on
    request, with ``covered``, the agents it is about; ``analysed_at`` says when,
    ``analysis_seconds`` how long it took."""

    title = models.CharField(max_length=200)
    scope = models.CharField(max_length=10, choices=IncidentScope.choices)
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="incidents"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="incidents"
    )
    status = models.CharField(
        max_length=14, choices=IncidentStatus.choices, default=IncidentStatus.OPEN
    )
    opened_at = models.DateTimeField()
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_by_label = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    analysis_state = models.CharField(
        max_length=8, choices=AnalysisState.choices, default=AnalysisState.QUEUED
    )
    report = models.JSONField(null=True, blank=True)
    analysed_at = models.DateTimeField(null=True, blank=True)
    analysis_seconds = models.FloatField(null=True, blank=True)
    analysis_error = models.TextField(blank=True)
    # The agents whose data the report holds (the scope's when it was last analysed): a
    # team's incident stays hidden from whoever may not view one of them, also after an
    # agent moves to another team (selectors.incidents_visible).
    covered = models.ManyToManyField(Agent, blank=True, related_name="covering_incidents")

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope="global", team__isnull=True, agent__isnull=True)
                | models.Q(scope="team", team__isnull=False, agent__isnull=True)
                | models.Q(scope="agent", agent__isnull=False),
                name="incident_scope_matches_target",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-opened_at"], name="incident_status_recent"),
            models.Index(fields=["agent", "-opened_at"], name="incident_agent_recent"),
        ]

    def __str__(self) -> str:
        return f"INC-{self.pk}: {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status != IncidentStatus.RESOLVED


class IncidentTrigger(models.Model):
    """What opened the incident, or joined it while it was open (a second alert, the kill
    switch pressed after it): what it was, which object, and when."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="triggers")
    kind = models.CharField(max_length=14, choices=TriggerKind.choices)
    # The object that set it off: "monitoring.alert", "killswitch.killswitch",
    # "releases.rollout", "gateway.action" or "agents.agent", and its key.
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    summary = models.CharField(max_length=300)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return self.summary

    @property
    def described(self) -> str:
        """What set it off, in one line: its kind, unless its summary starts by saying it
        ("Kill switch engaged for ...", "Critical alert: ...")."""
        kind = self.get_kind_display()
        if self.summary.lower().startswith(kind.lower()):
            return self.summary
        return f"{kind}: {self.summary}"


class IncidentNote(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.body[:60]
