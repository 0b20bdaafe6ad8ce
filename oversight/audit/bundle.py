"""Evidence bundles: one agent's (or every) event in a time range, with what an auditor
needs to check them on another machine without Oversight: the events, an inclusion proof
of each in the newest checkpoint, every checkpoint statement, the public key, the verifier
and a README. Verified by ``python verify.py bundle BUNDLE.zip``."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.db.models import QuerySet

from oversight.audit import checkpoints, merkle, signing, verifier
from oversight.audit.export import COLUMNS
from oversight.audit.models import AuditCheckpoint, AuditEvent, verifier_row_of
from oversight.audit.proofs import inclusion_proof
from oversight.audit.selectors import AuditFilters, audit_filter

MAX_EVENTS = 100_000
_README = """# Oversight audit evidence

{scope}

{count} events (seq {first} to {last}), each with an RFC 9162 inclusion proof in the
Merkle tree signed by checkpoint #{number} ({size} events, {time}).

Files:
- events.jsonl: the events, every field their hash covers;
- proofs.json: for each seq, the checkpoint and the inclusion path (hex);
- checkpoints/: every checkpoint statement of the log up to #{number}, each signed;
- public-key.pem: the Ed25519 key that signed them (key id {key_id}). Compare it with the
  key the log's operator publishes ({site}/audit/public-key.pem) before trusting it;
- verify.py: the verifier (Python 3.11+ and the `cryptography` package, nothing else).

Verify:

    pip install cryptography
    python verify.py bundle {name}

It checks each event's content against its hash, each hash's inclusion in the signed tree,
and every checkpoint's signature and link to the one before. Exit code 0: verified.
"""


class BundleError(Exception):
    pass


@dataclass(frozen=True)
class Bundle:
    name: str
    content: bytes
    events: int
    checkpoint: int


def _document(checkpoint: AuditCheckpoint) -> str:
    document = json.loads(checkpoint.document)
    document.pop("events", None)  # the statements are what is signed; the lists are long
    return verifier.dumps_document(document)


def _agent_exists(slug: str) -> bool:
    from oversight.agents.models import Agent  # audit is below agents

    return Agent.objects.filter(slug=slug).exists()


def bundle_build(*, events: QuerySet[AuditEvent], filters: AuditFilters, site: str) -> Bundle:
    """The events of ``events`` (what the caller may read) that ``filters`` select.
    Checkpoints first, so every event so far is covered. Raises BundleError when nothing
    matches or the range is too large for one bundle (an agent that does not exist is
    said so, before any checkpoint is written)."""
    if filters.agent and not _agent_exists(filters.agent):
        raise BundleError(f"No agent {filters.agent!r}: give an agent's slug, as on its page.")
    checkpoints.checkpoint_write()
    latest = AuditCheckpoint.objects.order_by("-number").first()
    if latest is None:
        raise BundleError("The log has no events yet.")
    agent_slug, since, until = filters.agent, filters.since, filters.until
    events = audit_filter(events, filters).filter(seq__lte=latest.tree_size)
    count = events.count()
    if count == 0:
        raise BundleError("No events match: choose another agent or time range.")
    if count > MAX_EVENTS:
        raise BundleError(f"{count} events match; a bundle holds {MAX_EVENTS} at most.")
    tree = merkle.Tree()
    lines, proofs = [], {}
    for event in events.with_stored_texts().order_by("seq").iterator(chunk_size=2000):
        row = verifier_row_of(event, COLUMNS)
        row["created_at"] = verifier.timestamp_text(event.created_at)
        lines.append(json.dumps(row, sort_keys=True, ensure_ascii=False))
        proofs[str(event.seq)] = inclusion_proof(event, latest, tree)
    first, last = json.loads(lines[0])["seq"], json.loads(lines[-1])["seq"]
    stamp = latest.time[:19].replace(":", "").replace("-", "")
    name = f"oversight-evidence-{agent_slug or 'all'}-{stamp}.zip"
    scope = f"Agent: {agent_slug}" if agent_slug else "All agents"
    if since or until:
        scope += f"; from {since or 'the start'} to {until or 'now'}"
    readme = _README.format(
        scope=scope,
        count=len(lines),
        first=first,
        last=last,
        number=latest.number,
        size=latest.tree_size,
        time=latest.time,
        key_id=signing.key_id(),
        site=site,
        name=name,
    )
    buffer = io.BytesIO()
    folder = name.removesuffix(".zip")
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{folder}/README.md", readme)
        archive.writestr(f"{folder}/events.jsonl", "\n".join(lines) + "\n")
        archive.writestr(f"{folder}/proofs.json", json.dumps(proofs, indent=1))
        archive.writestr(f"{folder}/public-key.pem", signing.public_key_pem())
        archive.writestr(f"{folder}/verify.py", Path(verifier.__file__).read_text("utf-8"))
        for checkpoint in AuditCheckpoint.objects.filter(number__lte=latest.number).iterator():
            archive.writestr(
                f"{folder}/checkpoints/checkpoint-{checkpoint.number:010d}.json",
                _document(checkpoint) + "\n",
            )
    return Bundle(name, buffer.getvalue(), len(lines), latest.number)
