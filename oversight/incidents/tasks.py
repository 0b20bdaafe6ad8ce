"""Jobs of incidents: the analysis, queued when one opens or a person asks again."""

from __future__ import annotations

from celery import shared_task

from oversight.incidents.services import incident_analyse


@shared_task(name="oversight.incidents.tasks.incident_analyse_task")
def incident_analyse_task(incident_id: int) -> str:
    """Analyse one incident and keep the report (each run replaces the last)."""
    incident = incident_analyse(incident_id=incident_id)
    return incident.analysis_state if incident is not None else "missing"
