"""The audit trust pages: the public key and checkpoints at stable URLs, the chain's state
on the audit page, one event with its hashes and inclusion proof, evidence bundles; who
may see each."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.accounts.services import team_create
from oversight.agents.services import agent_access_grant
from oversight.audit import signing, verbs, verifier
from oversight.audit.models import AuditEvent, CheckpointDelivery, SinkState
from oversight.audit.proofs import inclusion_proof
from tests.audit.helpers import record, tamper
from tests.audit.trust_helpers import checkpoint_delivered, verify_bundle_offline
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db

LIST_URL = reverse("audit:list")
KEY_URL = reverse("audit:public-key")
CHECKPOINTS_URL = reverse("audit:checkpoints")
BUNDLE_URL = reverse("audit:bundle")
consumes_async_stream = pytest.mark.filterwarnings(
    "ignore:StreamingHttpResponse must consume asynchronous iterators"
)


@pytest.fixture(autouse=True)
def _own_sink(settings: Any, tmp_path: Path) -> Path:
    sink = tmp_path / "checkpoints"
    settings.AUDIT_CHECKPOINT_SINKS = [f"dir:{sink}"]
    return sink


@pytest.fixture
def world(agent: Any, other_agent: Any, auditor: Any) -> dict[str, Any]:
    """Two teams' agents; the auditor may view only the payments team's refund bot."""
    agent_access_grant(actor=SYSTEM, agent=agent, user=auditor, level="viewer")
    return {"agent": agent, "other_agent": other_agent}


def _get(client: Client, user: Any, url: str, **extra: Any) -> Any:
    client.force_login(user)
    return client.get(url, **extra)


def _event_url(seq: int) -> str:
    return reverse("audit:event", args=[seq])


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- the public key and the checkpoints ---------------------------------------------------


def test_the_public_key_is_served_to_anyone_as_pem(client: Client) -> None:
    response = client.get(KEY_URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == signing.public_key_pem()
    key = verifier.public_key_from_pem(response.content)
    assert verifier.key_id(key) == signing.key_id()


@consumes_async_stream
def test_checkpoints_are_every_document_oldest_first_and_verify(
    client: Client, admin_user: Any, tmp_path: Path
) -> None:
    record(3)
    checkpoint_delivered()
    record(2)
    checkpoint_delivered()
    response = _get(client, admin_user, CHECKPOINTS_URL)
    assert response.status_code == 200
    body = b"".join(response).decode()
    lines = body.splitlines()
    assert [json.loads(line)["checkpoint"]["number"] for line in lines] == [1, 2]
    saved = tmp_path / "checkpoints.jsonl"
    saved.write_text(body)
    checkpoints = verifier.read_checkpoints(str(saved))
    key = verifier.public_key_from_pem(signing.public_key_pem().encode())
    assert verifier.check_checkpoints(checkpoints, key) is None
    assert checkpoints[1].event_hashes == list(
        AuditEvent.objects.filter(seq__gt=3).order_by("seq").values_list("hash", flat=True)
    )


@consumes_async_stream
def test_checkpoints_are_for_auditors_and_admins_only(
    client: Client, world: dict[str, Any], auditor: Any, outsider: Any
) -> None:
    assert _get(client, auditor, CHECKPOINTS_URL).status_code == 200
    assert _get(client, outsider, CHECKPOINTS_URL).status_code == 403
    client.logout()
    response = client.get(CHECKPOINTS_URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- the chain's state on the audit page --------------------------------------------------


def test_the_audit_page_shows_the_last_checkpoint_its_sinks_and_the_key(
    client: Client, admin_user: Any
) -> None:
    record(4)
    checkpoint = checkpoint_delivered()
    CheckpointDelivery.objects.create(
        checkpoint=checkpoint,
        sink="webhook:https://hooks.example.com/secret-token",
        state=SinkState.FAILED,
        attempts=5,
        last_error="HTTP 500: boom",
    )
    CheckpointDelivery.objects.create(
        checkpoint=checkpoint,
        sink="email:audit@example.com",
        attempts=2,
        last_error="SMTPServerDisconnected: gone",
    )
    page = _get(client, admin_user, LIST_URL).content.decode()
    section = _text(page[page.index('id="checkpoint"') : page.index('id="signing-key"')])
    assert f"#{checkpoint.number}" in section
    assert f"Events {checkpoint.tree_size}" in section
    assert checkpoint.root[:16] in section and checkpoint.root not in section
    assert checkpoint.key_id in section
    assert "Delivered" in section
    assert "Failed webhook:https://hooks.example.com/… 5 attempts HTTP 500: boom" in section
    assert "secret-token" not in page
    assert "Pending email:audit@example.com 2 attempts SMTPServerDisconnected: gone" in section
    assert signing.key_id() in page
    assert signing.public_key_pem().splitlines()[1] in page
    assert 'data-copy="#public-key-pem"' in page
    assert f'href="{KEY_URL}"' in page


def test_the_page_warns_when_new_events_wait_too_long_for_a_checkpoint(
    client: Client, admin_user: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(3)
    checkpoint_delivered()
    record(2)
    page = _get(client, admin_user, LIST_URL).content.decode()
    assert "not yet in a signed checkpoint" not in page
    assert "2 newer events will be in the next checkpoint" in _text(page)

    later = timezone.now() + dt.timedelta(seconds=settings.AUDIT_CHECKPOINT_MAX_AGE_SECONDS + 5)
    monkeypatch.setattr("oversight.audit.trust_selectors.timezone.now", lambda: later)
    page = _text(_get(client, admin_user, LIST_URL).content.decode())
    assert "2 events (from seq 4) not yet in a signed checkpoint" in page


def test_a_log_without_checkpoints_says_so_and_warns_once_it_is_old(
    client: Client, admin_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(2)
    page = _text(_get(client, admin_user, LIST_URL).content.decode())
    assert "No checkpoint yet" in page
    assert "The log has not been verified yet." in page
    later = timezone.now() + dt.timedelta(days=1)
    monkeypatch.setattr("oversight.audit.trust_selectors.timezone.now", lambda: later)
    page = _text(_get(client, admin_user, LIST_URL).content.decode())
    assert "events (from seq 1) not yet in a signed checkpoint" in page


def test_a_filter_swap_renders_the_results_without_the_chain_state(
    client: Client, admin_user: Any
) -> None:
    record(2)
    response = _get(client, admin_user, LIST_URL, query_params={"verb": "test.event"})
    assert "Last checkpoint" in response.content.decode()
    fragment = _get(
        client, admin_user, LIST_URL, query_params={"verb": "test.event"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Last checkpoint" not in fragment and "Evidence bundle" not in fragment
    assert f'href="{_event_url(2)}"' in fragment


def test_the_chain_state_is_for_auditors_and_admins(
    client: Client, world: dict[str, Any], auditor: Any, outsider: Any
) -> None:
    assert "Last checkpoint" in _get(client, auditor, LIST_URL).content.decode()
    assert _get(client, outsider, LIST_URL).status_code == 403


# --- one event: diff, hashes, inclusion proof ---------------------------------------------


def test_an_event_shows_who_what_the_diff_and_its_hashes(client: Client, admin_user: Any) -> None:
    record(3)
    event = AuditEvent.objects.get(seq=2)
    page = _get(client, admin_user, _event_url(2)).content.decode()
    text = _text(page)
    assert "system:tests" in text and "test.event" in text and "thing 1" in text
    assert '<tr class="diff-changed">' in page and '<tr class="diff-added">' in page
    assert event.prev_hash in page and event.hash in page
    assert "Its content matches its hash." in text
    assert "Not yet in a checkpoint" in text
    assert f'href="{_event_url(1)}"' in page and f'href="{_event_url(3)}"' in page


def test_an_events_inclusion_proof_verifies_against_the_newest_checkpoint(
    client: Client, admin_user: Any
) -> None:
    record(300)  # past one stored chunk of 256
    checkpoint = checkpoint_delivered()
    event = AuditEvent.objects.get(seq=77)
    page = _get(client, admin_user, _event_url(77)).content.decode()
    assert "The inclusion proof verifies" in page
    assert "signature verifies with key" in page
    shown = re.findall(r'<li class="hash">([0-9a-f]{64})</li>', page)
    assert shown == inclusion_proof(event)["path"] and shown
    assert verifier.verify_inclusion(
        76,
        checkpoint.tree_size,
        verifier.leaf_hash(event.hash),
        [bytes.fromhex(node) for node in shown],
        bytes.fromhex(checkpoint.root),
    )
    assert checkpoint.root in page
    assert f"Tree size {checkpoint.tree_size}" in _text(page)
    assert "Leaf index 76" in _text(page)


@pytest.mark.django_db(transaction=True)  # tamper() may act on a connection of its own
def test_an_altered_event_shows_that_its_content_no_longer_matches(
    client: Client, admin_user: Any
) -> None:
    record(3)
    tamper("UPDATE audit_auditevent SET target_label = 'nothing to see' WHERE seq = 2")
    page = _text(_get(client, admin_user, _event_url(2)).content.decode())
    assert "content does not match its hash" in page


def test_each_row_of_the_list_opens_its_event(client: Client, admin_user: Any) -> None:
    record(3)
    page = _get(client, admin_user, LIST_URL).content.decode()
    for seq in (1, 2, 3):
        assert f'<a href="{_event_url(seq)}"' in page


def test_an_event_opens_for_whoever_reads_it_in_the_list_else_404(
    client: Client, world: dict[str, Any], admin_user: Any, auditor: Any, outsider: Any
) -> None:
    team_create(actor=SYSTEM, name="ops")  # an event about no agent: admins only
    mine = AuditEvent.objects.filter(agent_id=world["agent"].pk).latest("seq").seq
    theirs = AuditEvent.objects.filter(agent_id=world["other_agent"].pk).latest("seq").seq
    no_agent = AuditEvent.objects.get(verb=verbs.TEAM_CREATED, target_label="ops").seq
    for seq in (mine, theirs, no_agent):
        assert _get(client, admin_user, _event_url(seq)).status_code == 200
    assert _get(client, auditor, _event_url(mine)).status_code == 200
    assert _get(client, auditor, _event_url(theirs)).status_code == 404
    assert _get(client, auditor, _event_url(no_agent)).status_code == 404
    assert _get(client, outsider, _event_url(theirs)).status_code == 404
    assert _get(client, admin_user, _event_url(10_000)).status_code == 404
    client.logout()
    assert client.get(_event_url(mine)).status_code == 302


def test_an_auditor_steps_only_through_events_they_may_read(
    client: Client, world: dict[str, Any], auditor: Any
) -> None:
    mine = list(
        AuditEvent.objects.filter(agent_id=world["agent"].pk)
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    assert len(mine) >= 2
    page = _get(client, auditor, _event_url(mine[-1])).content.decode()
    assert f'href="{_event_url(mine[-2])}"' in page
    for seq in AuditEvent.objects.exclude(seq__in=mine).values_list("seq", flat=True):
        assert f'href="{_event_url(seq)}"' not in page


# --- evidence bundles ---------------------------------------------------------------------


def _csrf_client(user: Any) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(LIST_URL).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token
    return client, token.group(1)


def _zip_member(content: bytes, suffix: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(suffix)]
        return archive.read(name)


def test_an_admin_downloads_a_bundle_that_verifies_without_the_project(
    world: dict[str, Any], admin_user: Any, tmp_path: Path
) -> None:
    agent = world["agent"]
    client, token = _csrf_client(admin_user)
    response = client.post(BUNDLE_URL, {"csrfmiddlewaretoken": token, "bundle-agent": agent.slug})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert re.match(
        r'attachment; filename="oversight-evidence-refund-bot-\d{8}T\d{6}\.zip"',
        response["Content-Disposition"],
    )
    events = [
        json.loads(line)
        for line in _zip_member(response.content, "/events.jsonl").decode().splitlines()
    ]
    assert events and {event["agent_id"] for event in events} == {agent.pk}
    done = verify_bundle_offline(response.content, tmp_path / "offline")
    assert done.returncode == 0, done.stderr
    assert f"Verified: {len(events)} events, each in a signed checkpoint." in done.stdout

    exported = AuditEvent.objects.filter(verb=verbs.AUDIT_EXPORTED).latest("seq")
    assert (exported.actor_label, exported.target_id) == (admin_user.username, "bundle")
    assert exported.after["agent"] == agent.slug and exported.after["events"] == len(events)


def test_an_auditors_bundle_holds_only_the_agents_they_may_view(
    world: dict[str, Any], auditor: Any
) -> None:
    client, token = _csrf_client(auditor)
    response = client.post(BUNDLE_URL, {"csrfmiddlewaretoken": token, "bundle-agent": ""})
    assert response.status_code == 200
    lines = _zip_member(response.content, "/events.jsonl").decode().splitlines()
    assert {json.loads(line)["agent_id"] for line in lines} == {world["agent"].pk}

    refused = client.post(
        BUNDLE_URL,
        {"csrfmiddlewaretoken": token, "bundle-agent": world["other_agent"].slug},
        follow=True,
    )
    assert refused.redirect_chain == [(LIST_URL, 302)]
    assert "No evidence bundle: Select a valid choice." in refused.content.decode()


def test_a_bundle_with_nothing_in_range_is_a_message_not_an_error(
    world: dict[str, Any], admin_user: Any
) -> None:
    client, token = _csrf_client(admin_user)
    response = client.post(
        BUNDLE_URL,
        {
            "csrfmiddlewaretoken": token,
            "bundle-agent": world["agent"].slug,
            "bundle-since": "2001-01-01T00:00",
            "bundle-until": "2001-01-02T00:00",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "No evidence bundle: No events match" in response.content.decode()
    assert not AuditEvent.objects.filter(verb=verbs.AUDIT_EXPORTED).exists()


def test_the_bundle_form_needs_its_csrf_token_and_a_reader(
    world: dict[str, Any], admin_user: Any, outsider: Any
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(BUNDLE_URL, {"bundle-agent": ""}).status_code == 403
    assert client.get(BUNDLE_URL).status_code == 405
    lax = Client()  # no CSRF check: the refusal is the role's
    lax.force_login(outsider)
    assert lax.post(BUNDLE_URL, {"bundle-agent": ""}).status_code == 403
