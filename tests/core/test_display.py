"""The words and pills every page shares (oversight/core/templatetags/display.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.template import Context, Template
from django.utils import timezone

from oversight.killswitch.models import KillSwitch, Scope
from oversight.lib import humanize


def render(source: str, **context: Any) -> str:
    return Template("{% load display %}" + source).render(Context(context))


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (900, "15 minutes"),
        (60, "1 minute"),
        (45, "45 seconds"),
        (3600, "1 hour"),
        (5400, "1 hour 30 minutes"),
        (86400, "1 day"),
        (90061, "1 day 1 hour"),
        (0, "0 seconds"),
    ],
)
def test_durations_read_in_words(seconds: int, words: str) -> None:
    assert humanize.duration(seconds) == words
    assert render("{{ s|duration }}", s=seconds) == words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (898.5, "expires in 14m 58s"),
        (45, "expires in 45s"),
        (3600 + 120, "expires in 1h 2m"),
        (0, "expired"),
        (-5, "expired"),
    ],
)
def test_a_deadline_reads_as_its_countdown_ticks(seconds: float, words: str) -> None:
    """The same words as static/js/oversight.js, so a card never mixes "14 minutes" with
    "14m 58s" a second later."""
    now = timezone.now()
    assert humanize.expires_in(now + timedelta(seconds=seconds), now) == words
    assert render("{{ when|expires_in }}", when=None) == ""


def test_a_moment_under_a_minute_ago_is_just_now() -> None:
    now = timezone.now()
    assert humanize.ago(now - timedelta(seconds=5), now) == "just now"
    assert humanize.ago(now + timedelta(seconds=2), now) == "just now"  # a clock a little ahead
    assert humanize.ago(now - timedelta(minutes=3), now) == "3\xa0minutes ago"
    assert render("{{ when|ago }}", when=timezone.now()) == "just now"


def test_json_is_rendered_as_json_not_python() -> None:
    text = render("{{ after|as_json }}", after={"ok": True, "note": None, "name": "Zoë"})
    q = "&quot;"
    assert text == f"{{\n  {q}name{q}: {q}Zoë{q},\n  {q}note{q}: null,\n  {q}ok{q}: true\n}}"
    assert "True" not in text and "None" not in text
    assert render("{{ nothing|as_json }}", nothing=None) == ""


def test_a_reviewers_deny_reads_as_denied() -> None:
    assert render("{{ s|status_words }}", s="pending") == "Waiting for approval"
    assert render("{{ s|status_words }}", s="something new") == "something new"
    assert render("{{ s|action_status }}", s="rejected") == (
        '<span class="pill status-rejected">Denied by a reviewer</span>'
    )
    assert render("{{ s|action_status }}", s="denied") == (
        '<span class="pill status-denied">Denied</span>'
    )


@pytest.mark.django_db
def test_a_halted_agent_reads_halted_not_active(agent: Any, other_agent: Any) -> None:
    switch = KillSwitch(scope=Scope.TEAM, team=agent.team, engaged=True, reason="incident 7")
    page = "{% agent_state agent %}"
    halted = render(page, agent=agent, engaged_switches=[switch])
    assert "Halted by a kill switch" in halted and "status-halted" in halted
    assert "team payments: incident 7" in halted
    assert "Active" in render(page, agent=other_agent, engaged_switches=[switch])
    assert "Active" in render(page, agent=agent)  # no switches in the context
    everything = KillSwitch(scope=Scope.GLOBAL, engaged=True, reason="all stop")
    assert "Halted" in render(page, agent=other_agent, engaged_switches=[everything])
    agent.status = "retired"
    assert "Retired" in render(page, agent=agent, engaged_switches=[everything])


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (Decimal("20000.0000"), "20000"),
        (Decimal("2E+4"), "20000"),
        (Decimal("5141.0000"), "5141"),
        ("12.50", "12.5"),
        (Decimal("0.0000"), "0"),
        (Decimal("-3.10"), "-3.1"),
        (158, "158"),
        (None, ""),
        ("not a number", "not a number"),
        ("NaN", "NaN"),
    ],
)
def test_sums_read_as_people_write_them(value: Any, words: str) -> None:
    assert humanize.plain_number(value) == words
    assert render("{{ v|plain_number }}", v=value) == words


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("23548", "23,548"),
        (Decimal("2E+4"), "20,000"),
        (Decimal("1234567.5000"), "1,234,567.5"),
        (Decimal("-3.10"), "-3.1"),
        ("not a number", "not a number"),
    ],
)
def test_a_sum_read_not_typed_has_its_thousands_separated(value: Any, words: str) -> None:
    """The blast radius's amounts ("23548 USD" read as one long number)."""
    assert render("{{ v|grouped_number }}", v=value) == words


def test_params_read_piece_by_piece_each_value_whole_or_cut_with_an_ellipsis() -> None:
    from oversight.lib.humanize import params_parts

    assert params_parts({"charges": ["ch_1"], "amount": 900}) == [
        "amount: 900",
        'charges: ["ch_1"]',
    ]
    whole = params_parts({"note": "x" * 200})[0]
    assert whole == 'note: "' + "x" * 200 + '"'  # shown whole (the row wraps it)
    long = params_parts({"note": "x" * 400})[0]
    assert long.startswith('note: "xxx') and long.endswith("…") and len(long) == 6 + 300
    many = params_parts({f"k{i:02}": i for i in range(14)})
    assert len(many) == 13 and many[-1] == "and 2 more"
    assert params_parts(None) == [] and params_parts({}) == []


def test_params_cut_says_when_a_row_cannot_show_them_all() -> None:
    from oversight.lib.humanize import params_cut

    assert not params_cut({"amount": 900, "note": "x" * 200}) and not params_cut(None)
    assert params_cut({"note": "x" * 400})
    assert params_cut({f"k{i:02}": i for i in range(13)})
    assert not params_cut({f"k{i:02}": i for i in range(12)})


@pytest.mark.parametrize(
    ("value", "html"),
    [
        ("payments.refund", "payments.refund"),  # a word of 24 or fewer: never broken
        ("a" * 24, "a" * 24),
        ("n" * 60, "n" * 24 + "<wbr>" + "n" * 24 + "<wbr>" + "n" * 12),
        (
            "stripe:charge/ch_3MtwBwLkdIwHu7ix and more",
            "stripe:<wbr>charge/<wbr>ch_<wbr>3MtwBwLkdIwHu7ix and more",
        ),
        ("<b>" + "x" * 30, "&lt;b&gt;" + "x" * 21 + "<wbr>" + "x" * 9),  # escaped
        ("a <b>", "a &lt;b&gt;"),
    ],
)
def test_soft_breaks_give_only_long_words_places_to_wrap(value: str, html: str) -> None:
    assert render("{{ value|soft_breaks }}", value=value) == html


def test_code_spans_set_what_backticks_mark_as_code() -> None:
    detail = 'condition `params.amount > 100 && env == "prod"` was true; `<x>`'
    assert render("{{ detail|code_spans }}", detail=detail) == (
        "condition <code>params.amount &gt; 100 &amp;&amp; env == &quot;prod&quot;</code>"
        " was true; <code>&lt;x&gt;</code>"
    )
