"""PostgreSQL: audit_append (audit/sql/audit_append.v3.sql) hashes an event from its
columns exactly as the verifier does, whatever they hold and in whatever layout before and
after arrive (then an export carries the text: verifier.STORED_TEXTS), and it is the
runtime role's only way to append one (tests/audit/test_runtime_role.py: its INSERT is
refused)."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oversight.audit.append_sql import COLUMNS
from oversight.audit.services import audit_append_call, audit_event_appended
from oversight.audit.verifier import compute_hash
from oversight.lib import prepared
from tests.audit.helpers import append_as_sent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# PostgreSQL text has no NUL, and UTF-8 no lone surrogate. At most 10 characters: the
# shortest column (actor_type).
_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)
_id = st.none() | st.integers(min_value=1, max_value=2**62)


class _RolledBack(Exception):
    pass


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    created_at=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    strings=st.lists(_text, min_size=6, max_size=6),
    request_id=_text,
    ids=st.lists(_id, min_size=3, max_size=3),
    before=_json,
    after=_json,
)
def test_the_database_hashes_an_event_as_the_verifier_does(
    created_at: dt.datetime,
    strings: list[str],
    request_id: str,
    ids: list[int | None],
    before: Any,
    after: Any,
) -> None:
    actor_type, actor_label, verb, target_type, target_id, target_label = strings
    row = {
        "created_at": created_at,
        "actor_type": actor_type,
        "actor_user_id": ids[0],
        "actor_agent_id": ids[1],
        "actor_label": actor_label,
        "verb": verb,
        "target_type": target_type,
        "target_id": target_id,
        "target_label": target_label,
        "agent_id": ids[2],
        "request_id": request_id,
        "before": before,
        "after": after,
    }
    assert set(row) == set(COLUMNS)
    try:
        with transaction.atomic():
            event = audit_event_appended(row, prepared.fetch_one(*audit_append_call(row)))
            assert event.hash == compute_hash(
                {**row, "seq": event.seq, "prev_hash": event.prev_hash}
            )
            raise _RolledBack
    except _RolledBack:
        pass


# --- before and after in any layout ---------------------------------------------------


def _spaces(rnd: random.Random) -> str:
    return rnd.choice(["", "", " ", "\n  ", "\t", " \r\n"])


def _string(value: str, rnd: random.Random) -> str:
    text = json.dumps(value, ensure_ascii=rnd.random() < 0.5)
    return text.replace("/", "\\/") if rnd.random() < 0.5 else text


def _number(value: float, rnd: random.Random) -> str:
    """The same double in a layout Python's json reads back as it (or, for '%.17g' of an
    integral value, as that integer)."""
    return rnd.choice([repr(value), f"{value:.17g}", f"{value:.17e}", repr(value).upper()])


def _layout(value: Any, rnd: random.Random) -> str:
    """``value`` as JSON text in another layout than the canonical one: spaces, keys in any
    order, a key given twice (the last one counts), escapes, other number forms."""
    if isinstance(value, dict):
        members = []
        for key, item in rnd.sample(list(value.items()), len(value)):
            if rnd.random() < 0.3:
                members.append(f"{_string(key, rnd)}:{_spaces(rnd)}[1, 2]")  # overridden
            members.append(f"{_string(key, rnd)}{_spaces(rnd)}:{_spaces(rnd)}{_layout(item, rnd)}")
        return "{" + _spaces(rnd) + ("," + _spaces(rnd)).join(members) + _spaces(rnd) + "}"
    if isinstance(value, list):
        items = ("," + _spaces(rnd)).join(_layout(item, rnd) for item in value)
        return "[" + _spaces(rnd) + items + _spaces(rnd) + "]"
    if isinstance(value, str):
        return _string(value, rnd)
    if isinstance(value, float):
        return _number(value, rnd)
    if value == 0 and value is not False and rnd.random() < 0.5:
        return "-0"
    return json.dumps(value)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=_json, after=_json, rnd=st.randoms(use_true_random=False))
def test_before_and_after_in_any_layout_are_kept_as_sent_and_verify(
    before: Any, after: Any, rnd: random.Random
) -> None:
    """A caller may send the same values laid out otherwise (as whoever holds the runtime
    credentials could, by hand): the row keeps the text as sent, the database hashes it,
    and the verifier, given that text beside the values (as an export gives it), agrees
    (append_as_sent checks)."""
    sent_before, sent_after = _layout(before, rnd), _layout(after, rnd)
    try:
        with transaction.atomic():
            assert append_as_sent(sent_before, sent_after) == (sent_before, sent_after)
            raise _RolledBack
    except _RolledBack:
        pass


@pytest.mark.parametrize(
    "sent",
    [
        '{"b": 1.50, "a" : [1E2, -0, "\\u00e9\\/"], "a": null}',
        '  {"z":{"y":true, "x":false}}  ',
        "[-0.0, 5e-324, 1.7976931348623157e308, 1e400]",
        '"\\u001f\\b\\f\\n\\r\\t\\"\\\\"',
        None,
    ],
)
def test_a_layout_is_kept_as_sent(sent: str | None) -> None:
    with transaction.atomic():
        assert append_as_sent(sent, sent) == (sent, sent)
        transaction.set_rollback(True)
