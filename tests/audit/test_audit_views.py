"""The audit log page and its exports: who reads what, filters, paging, CSV and JSONL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.agents.services import agent_access_grant, agent_create, agent_update
from oversight.audit.actors import Actor
from oversight.audit.export import COLUMNS
from oversight.audit.models import AuditEvent
from oversight.audit.selectors import PAGE_SIZE
from tests.audit.helpers import record
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db

URL = reverse("audit:list")
CSV_URL = reverse("audit:export", args=["csv"])
JSONL_URL = reverse("audit:export", args=["jsonl"])
consumes_async_stream = pytest.mark.filterwarnings(
    "ignore:StreamingHttpResponse must consume asynchronous iterators"
)


@pytest.fixture
def world(agent: Any, other_agent: Any, auditor: Any) -> dict[str, Any]:
    """Two teams' agents; the auditor may view only the payments team's refund bot."""
    agent_access_grant(actor=SYSTEM, agent=agent, user=auditor, level="viewer")
    return {"agent": agent, "other_agent": other_agent}


def _page(client: Client, user: Any, params: dict[str, Any] | None = None) -> str:
    client.force_login(user)
    response = client.get(URL, params or {})
    assert response.status_code == 200
    return response.content.decode()


def _listed_seqs(page: str) -> list[int]:
    return [int(seq) for seq in re.findall(r'<td class="mono"><a [^>]*>(\d+)</a></td>', page)]


def _listed_verbs(page: str) -> set[str]:
    return set(re.findall(r'<span class="verb">([^<]+)</span>', page))


def _older_link(page: str) -> str | None:
    found = re.search(r'<p class="pager"><a href="([^"]+)"', page)
    return found.group(1).replace("&amp;", "&") if found else None


def _seqs_of(**filters: Any) -> set[int]:
    return set(AuditEvent.objects.filter(**filters).values_list("seq", flat=True))


def _export(client: Client, user: Any, url: str, params: dict[str, Any] | None = None) -> Any:
    client.force_login(user)
    return client.get(url, params or {})


def _body(response: Any) -> str:
    # The export streams an async iterator; iterating the response itself consumes it
    # synchronously (``streaming_content`` is the raw async generator here).
    assert response.streaming
    return b"".join(response).decode("utf-8")


def _csv_rows(response: Any) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.reader(io.StringIO(_body(response)))
    header = next(reader)
    return header, [dict(zip(header, row, strict=True)) for row in reader]


# --- who may read the log ----------------------------------------------------------


def test_it_redirects_anonymous_visitors_to_login(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("who", ["owner", "teammate", "outsider", "reviewer"])
def test_people_without_the_auditor_role_are_forbidden(
    client: Client, request: pytest.FixtureRequest, world: Any, who: str
) -> None:
    client.force_login(request.getfixturevalue(who))
    assert client.get(URL).status_code == 403
    assert client.get(CSV_URL).status_code == 403
    assert client.get(JSONL_URL).status_code == 403
    assert not AuditEvent.objects.filter(verb="audit.exported").exists()


def test_an_admin_reads_every_event(client: Client, admin_user: Any, world: Any) -> None:
    page = _page(client, admin_user)
    assert set(_listed_seqs(page)) == _seqs_of()
    assert {"team.created", "team.member_added", "agent.created"} <= _listed_verbs(page)


def test_an_auditor_reads_only_events_of_agents_they_were_granted(
    client: Client, auditor: Any, world: Any
) -> None:
    page = _page(client, auditor)
    seqs = set(_listed_seqs(page))
    assert seqs == _seqs_of(agent_id=world["agent"].pk)
    assert seqs.isdisjoint(_seqs_of(agent_id=world["other_agent"].pk))
    assert seqs.isdisjoint(_seqs_of(agent_id=None))
    assert "team.created" not in _listed_verbs(page)
    assert "Email campaigner" not in page


def test_an_auditor_with_no_grants_sees_an_empty_log(
    client: Client, auditor: Any, agent: Any
) -> None:
    page = _page(client, auditor)
    assert _listed_seqs(page) == []
    assert "No events match these filters." in page


def test_htmx_requests_get_only_the_results_partial(
    client: Client, admin_user: Any, world: Any
) -> None:
    client.force_login(admin_user)
    response = client.get(URL, {"verb": "team.created"}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert "<html" not in page
    assert 'id="audit-results"' in page
    assert _listed_verbs(page) == {"team.created"}


# --- filters -------------------------------------------------------------------------


def test_it_filters_by_agent_slug(client: Client, admin_user: Any, world: Any) -> None:
    page = _page(client, admin_user, {"agent": "email-campaigner"})
    assert set(_listed_seqs(page)) == _seqs_of(agent_id=world["other_agent"].pk)


def test_an_auditor_cannot_filter_by_an_agent_they_cannot_see(
    client: Client, auditor: Any, world: Any
) -> None:
    page = _page(client, auditor, {"agent": "email-campaigner"})
    assert _listed_seqs(page) == []
    assert 'class="error"' in page


def test_it_filters_by_actor_label(client: Client, admin_user: Any, owner: Any, world: Any) -> None:
    agent_update(actor=Actor.for_user(owner), agent=world["agent"], risk_tier="low")
    page = _page(client, admin_user, {"actor": "alice"})
    assert set(_listed_seqs(page)) == _seqs_of(actor_label="alice")
    assert _listed_verbs(page) == {"agent.updated"}


def test_it_filters_by_verb(client: Client, admin_user: Any, world: Any) -> None:
    page = _page(client, admin_user, {"verb": "agent.created"})
    assert set(_listed_seqs(page)) == _seqs_of(verb="agent.created")
    assert len(_listed_seqs(page)) == 2


def test_it_filters_by_since_and_until(client: Client, admin_user: Any, world: Any) -> None:
    record(1, verb="test.early")
    time.sleep(0.01)
    cut = timezone.now()
    time.sleep(0.01)
    record(1, verb="test.late")

    since = _page(client, admin_user, {"since": cut.isoformat()})
    assert _listed_verbs(since) == {"test.late"}

    until = _page(client, admin_user, {"until": cut.isoformat()})
    assert "test.late" not in _listed_verbs(until)
    assert "test.early" in _listed_verbs(until)

    window = {
        "since": (cut - dt.timedelta(seconds=60)).isoformat(),
        "until": (cut + dt.timedelta(seconds=60)).isoformat(),
    }
    assert set(_listed_seqs(_page(client, admin_user, window))) == _seqs_of()


@pytest.mark.parametrize("gap", [dt.timedelta(0), dt.timedelta(hours=-1)])
def test_a_range_that_ends_before_it_starts_shows_an_error_and_no_results(
    client: Client, admin_user: Any, world: Any, gap: dt.timedelta
) -> None:
    since = timezone.now() - dt.timedelta(days=1)
    page = _page(
        client, admin_user, {"since": since.isoformat(), "until": (since + gap).isoformat()}
    )
    assert "must be before" in page
    assert "__all__" not in page  # the form's own key for it was shown as a bullet
    assert _listed_seqs(page) == []


# --- keyset paging -------------------------------------------------------------------


def test_older_links_walk_every_event_once(client: Client, admin_user: Any, world: Any) -> None:
    record(PAGE_SIZE + 15)
    everything = _seqs_of()
    assert len(everything) > PAGE_SIZE

    client.force_login(admin_user)
    pages: list[list[int]] = []
    url: str | None = URL
    while url:
        html = client.get(url if url.startswith("/") else URL + url).content.decode()
        pages.append(_listed_seqs(html))
        url = _older_link(html)
        assert len(pages) < 10, "paging does not end"

    assert len(pages) == 2
    assert len(pages[0]) == PAGE_SIZE
    walked = [seq for page in pages for seq in page]
    assert walked == sorted(walked, reverse=True)  # newest first, across the page break
    assert len(walked) == len(set(walked))  # no overlap
    assert set(walked) == everything  # no gaps
    assert walked == list(range(max(everything), 0, -1))


def test_older_links_keep_the_filters(client: Client, admin_user: Any, world: Any) -> None:
    record(PAGE_SIZE + 3, verb="test.bulk")
    first = _page(client, admin_user, {"verb": "test.bulk"})
    link = _older_link(first)
    assert link is not None and "verb=test.bulk" in link
    before = int(re.search(r"before=(\d+)", link).group(1))
    second = client.get(URL + link).content.decode()
    assert _listed_verbs(second) == {"test.bulk"}
    assert len(_listed_seqs(second)) == 3
    assert max(_listed_seqs(second)) < before
    assert _older_link(second) is None


# --- exports -------------------------------------------------------------------------


@consumes_async_stream
def test_csv_has_a_header_and_one_row_per_visible_event(
    client: Client, admin_user: Any, world: Any
) -> None:
    response = _export(client, admin_user, CSV_URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    header, rows = _csv_rows(response)
    assert header == list(COLUMNS)
    seqs = [int(row["seq"]) for row in rows]
    assert len(seqs) == len(set(seqs))
    assert set(seqs) == _seqs_of()


@consumes_async_stream
def test_jsonl_has_one_json_object_per_visible_event(
    client: Client, admin_user: Any, world: Any
) -> None:
    response = _export(client, admin_user, JSONL_URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    lines = _body(response).splitlines()
    objects = [json.loads(line) for line in lines]
    assert all(set(obj) == set(COLUMNS) for obj in objects)
    assert {obj["seq"] for obj in objects} == _seqs_of()
    assert len(objects) == len(_seqs_of())
    created = next(o for o in objects if o["verb"] == "agent.created" and o["after"])
    assert isinstance(created["after"], dict)


@consumes_async_stream
@pytest.mark.parametrize("url", [CSV_URL, JSONL_URL])
def test_exports_hold_only_what_the_auditor_may_read(
    client: Client, auditor: Any, world: Any, url: str
) -> None:
    response = _export(client, auditor, url)
    if url == CSV_URL:
        seqs = {int(row["seq"]) for row in _csv_rows(response)[1]}
    else:
        # The whole log, to verify; what the auditor may not read is withheld: its place
        # in the chain only (test_withheld_export.py).
        rows = [json.loads(line) for line in _body(response).splitlines()]
        assert {row["seq"] for row in rows} == _seqs_of()
        withheld = [row for row in rows if row.get("withheld")]
        assert all(set(row) == {"seq", "prev_hash", "hash", "withheld"} for row in withheld)
        seqs = {row["seq"] for row in rows if not row.get("withheld")}
    assert seqs == _seqs_of(agent_id=world["agent"].pk)


@consumes_async_stream
@pytest.mark.parametrize("url", [CSV_URL, JSONL_URL])
def test_exports_respect_the_filters(client: Client, admin_user: Any, world: Any, url: str) -> None:
    response = _export(client, admin_user, url, {"verb": "agent.created"})
    if url == CSV_URL:
        rows = _csv_rows(response)[1]
    else:
        rows = [json.loads(line) for line in _body(response).splitlines()]
    assert {row["verb"] for row in rows} == {"agent.created"}
    assert len(rows) == 2


def _export_links(page: str) -> dict[str, str]:
    """The export links of the page or fragment, by format."""
    found = re.findall(r'href="(/audit/export\.(csv|jsonl)[^"]*)"', page)
    return {fmt: href.replace("&amp;", "&") for href, fmt in found}


def test_the_page_s_export_links_carry_its_filters(
    client: Client, admin_user: Any, world: Any
) -> None:
    page = _page(client, admin_user, {"verb": "agent.created", "before": "999"})
    assert _export_links(page) == {
        "csv": f"{CSV_URL}?verb=agent.created",  # not the page's position
        "jsonl": f"{JSONL_URL}?verb=agent.created",
    }


@consumes_async_stream
def test_a_filter_swap_brings_export_links_that_export_what_it_shows(
    client: Client, admin_user: Any, world: Any
) -> None:
    """The Filter button swaps the results only; the export links outside them come
    along out of band, with the new filters (they used to export the whole log)."""
    client.force_login(admin_user)
    response = client.get(
        URL, {"agent": "refund-bot", "verb": "agent.created"}, headers={"HX-Request": "true"}
    )
    fragment = response.content.decode()
    assert re.search(r'<div class="exports" id="audit-exports" hx-swap-oob="true">', fragment)
    shown = _listed_seqs(fragment)
    assert len(shown) == 1
    links = _export_links(fragment)
    assert set(links) == {"csv", "jsonl"}
    exported = [int(row["seq"]) for row in _csv_rows(client.get(links["csv"]))[1]]
    assert exported == shown
    lines = _body(client.get(links["jsonl"])).splitlines()
    assert [json.loads(line)["seq"] for line in lines] == shown


def test_a_full_page_has_no_out_of_band_export_links(
    client: Client, admin_user: Any, world: Any
) -> None:
    page = _page(client, admin_user, {"verb": "agent.created"})
    assert page.count('id="audit-exports"') == 1
    assert "hx-swap-oob" not in page


@consumes_async_stream
def test_an_export_is_itself_recorded(client: Client, auditor: Any, world: Any) -> None:
    response = _export(client, auditor, CSV_URL, {"verb": "agent.created"})
    _body(response)
    event = AuditEvent.objects.get(verb="audit.exported")
    assert (event.actor_type, event.actor_label, event.actor_user_id) == (
        "user",
        "aaron",
        auditor.pk,
    )
    assert (event.target_type, event.target_id) == ("audit.log", "csv")
    assert event.after == {"verb": "agent.created"}
    assert event.request_id == response["X-Request-ID"]


def test_an_unknown_export_format_is_404(client: Client, admin_user: Any) -> None:
    client.force_login(admin_user)
    assert client.get("/audit/export.xlsx").status_code == 404
    assert not AuditEvent.objects.filter(verb="audit.exported").exists()


def test_an_export_with_a_bad_range_is_refused(client: Client, admin_user: Any) -> None:
    since = timezone.now()
    response = _export(
        client, admin_user, CSV_URL, {"since": since.isoformat(), "until": since.isoformat()}
    )
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(verb="audit.exported").exists()


def test_anonymous_export_redirects_to_login(client: Client) -> None:
    response = client.get(CSV_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@consumes_async_stream
@pytest.mark.parametrize("formula", ['=HYPERLINK("http://evil.example")', "+1+1", "-2", "@SUM(A1)"])
def test_csv_cells_that_a_spreadsheet_would_run_are_defused(
    client: Client, admin_user: Any, team: Any, owner: Any, formula: str
) -> None:
    agent_create(
        actor=SYSTEM, name=formula, slug="formula-bot", purpose="p", owner=owner, team=team
    )
    _header, rows = _csv_rows(_export(client, admin_user, CSV_URL, {"verb": "agent.created"}))
    assert [row["target_label"] for row in rows] == ["'" + formula]
    # JSON cells are not touched: they start with "{".
    assert json.loads(rows[0]["after"])["name"] == formula


def test_a_noun_filters_by_all_of_its_verbs(
    client: Client, admin_user: Any, owner: Any, world: Any
) -> None:
    agent_update(actor=Actor.for_user(owner), agent=world["agent"], risk_tier="low")
    for noun in ("agent", "agent.*", "Agent"):
        page = _page(client, admin_user, {"verb": noun})
        assert {"agent.created", "agent.updated"} <= _listed_verbs(page), noun
        assert all(verb.startswith("agent.") for verb in _listed_verbs(page))
        assert set(_listed_seqs(page)) == _seqs_of(verb__startswith="agent.")


def test_an_unknown_verb_finds_nothing_and_says_why(
    client: Client, admin_user: Any, world: Any
) -> None:
    page = _page(client, admin_user, {"verb": "agent.changed"})
    assert _listed_seqs(page) == []
    assert "Oversight records no verb “agent.changed”" in page
    assert "a noun (“agent”)" in page


def test_bad_filters_are_named_by_the_labels_the_page_shows(
    client: Client, admin_user: Any
) -> None:
    """The page's "From" field's error read "Since:", and a broken page link's "Before:
    Enter a whole number." named a field nobody sees; an export of a bad filter answered
    with the form's own text dump."""
    client.force_login(admin_user)
    page = client.get(reverse("audit:list"), {"since": "abc", "before": "x"}).content.decode()
    assert "<p>From: Enter a valid date/time.</p>" in page
    assert "<p>Page link: it names no event; start again from the newest events.</p>" in page
    shown = client.get(CSV_URL, {"since": "abc"}, HTTP_ACCEPT="text/html")
    assert shown.status_code == 400
    assert "Not exported: From: Enter a valid date/time." in shown.content.decode()
    assert "<h1>That address asks for something unclear</h1>" in shown.content.decode()
    read = client.get(CSV_URL, {"since": "abc"})  # a script: the words alone
    assert (read.status_code, read.content.decode()) == (
        400,
        "Not exported: From: Enter a valid date/time.",
    )
    assert not AuditEvent.objects.filter(verb="audit.exported").exists()
