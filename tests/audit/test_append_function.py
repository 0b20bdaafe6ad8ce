"""PostgreSQL: audit_append (audit/sql/audit_append.v3.sql) hashes an event from its
columns exactly as the verifier does, whatever they hold, and it is the runtime role's
only way to append one (tests/audit/test_runtime_role.py: its INSERT is refused)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oversight.audit.append_sql import COLUMNS
from oversight.audit.services import audit_append_call, audit_event_appended
from oversight.audit.verifier import compute_hash
from oversight.lib import prepared

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# PostgreSQL text has no NUL, and UTF-8 no lone surrogate. At most 10 characters: the
# shortest column (actor_type).
_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
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
