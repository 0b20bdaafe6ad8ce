"""An incident as one document: the JSON its API answers and its export gives, and the
same as Markdown for a postmortem."""

from __future__ import annotations

from typing import Any

from oversight.incidents.models import Incident


def incident_document(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.pk,
        "title": incident.title,
        "scope": incident.scope,
        "agent": incident.agent.slug if incident.agent else None,
        "team": incident.team.slug if incident.team else None,
        "status": incident.status,
        "owner": incident.owner.get_username() if incident.owner else None,
        "opened_at": incident.opened_at.isoformat(),
        "opened_by": incident.opened_by_label,
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "triggers": [
            {
                "kind": t.kind,
                "summary": t.summary,
                "at": t.at.isoformat(),
                "target": f"{t.target_type}:{t.target_id}",
            }
            for t in incident.triggers.all()
        ],
        "notes": [
            {
                "author": n.author.get_username() if n.author else None,
                "at": n.created_at.isoformat(),
                "body": n.body,
            }
            for n in incident.notes.select_related("author")
        ],
        "analysis": {
            "state": incident.analysis_state,
            "analysed_at": incident.analysed_at.isoformat() if incident.analysed_at else None,
            "seconds_after_opening": (
                round((incident.analysed_at - incident.opened_at).total_seconds(), 3)
                if incident.analysed_at
                else None
            ),
            "error": incident.analysis_error or None,
        },
        "report": incident.report,
    }


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def incident_markdown(incident: Incident) -> str:
    doc = incident_document(incident)
    report = doc["report"] or {}
    lines = [
        f"# INC-{doc['id']}: {doc['title']}",
        "",
        f"- Scope: {doc['scope']} {doc['agent'] or doc['team'] or ''}".rstrip(),
        f"- Status: {doc['status']}; owner: {doc['owner'] or 'nobody yet'}",
        f"- Opened: {doc['opened_at']} by {doc['opened_by']}",
    ]
    if doc["resolved_at"]:
        lines.append(f"- Resolved: {doc['resolved_at']}")
    lines += ["", "## What set it off", ""]
    lines += [f"- {t['at']}: {t['summary']}" for t in doc["triggers"]]
    brk = report.get("break")
    lines += ["", "## Break point", ""]
    if brk:
        clear = "clear" if brk["clear"] else "not clear (weak evidence)"
        lines.append(f"Behaviour changed at {brk['at']} ({clear}; G = {brk['g']}).")
        lines += [f"- {w['what']}: {w['share']:.0%} of the change" for w in brk["what_changed"]]
    else:
        lines.append("Not found: too little traffic in the window.")
    heading = "Likely causes" if report.get("likely_cause") else "Changes in the window"
    lines += ["", f"## {heading}", ""]
    if report.get("causes"):
        lines += ["| # | When | Change | By | Score | Why |", "|---|---|---|---|---|---|"]
        for i, c in enumerate(report["causes"], 1):
            why = "; ".join(c["why"])
            lines.append(
                f"| {i} | {c['at']} | {_cell(c['summary'])} | {_cell(c['actor'])} "
                f"| {c['score']:.2f} | {_cell(why)} |"
            )
    else:
        lines.append("No change in scope before the break.")
    blast = report.get("blast_radius")
    if blast:
        lines += [
            "",
            "## Blast radius",
            "",
            f"From {blast['since']} to {blast['until']}: {blast['actions']} actions, "
            f"{blast['took_effect']} took effect on {blast['resources']} resources; "
            f"{blast['reversible']} reversible, {blast['rolled_back']} rolled back.",
        ]
        if blast.get("ends_at_release"):  # reports made before it was recorded lack it
            lines += ["", "It ends at the release of the kill switch that stopped the agents."]
        lines += [f"- {a['action']}: {a['sum']} {a['currency']}" for a in blast["amounts"]]
    if report.get("timeline"):
        lines += ["", "## Timeline", ""]
        lines += [f"- {e['at']} [{e['kind']}] {e['what']}" for e in report["timeline"]]
    if doc["notes"]:
        lines += ["", "## Notes", ""]
        lines += [f"- {n['at']} {n['author']}: {n['body']}" for n in doc["notes"]]
    return "\n".join(lines) + "\n"
