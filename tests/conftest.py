"""Shared people: an owner, a teammate who should see things, an outsider who should not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group

from oversight.accounts import roles
from oversight.accounts.services import team_add_member, team_create
from oversight.agents.services import agent_create
from oversight.audit.actors import Actor

SYSTEM = Actor.system("tests")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    """A statement that timed out on a lock: the report also lists the database's other
    sessions (what each runs or last ran, and whom it waits for), to name the holder."""
    report = yield
    if call.excinfo is not None and _timed_out_on_a_lock(call.excinfo.value):
        report.sections.append(("the database's other sessions", _other_sessions()))
    return report


def _timed_out_on_a_lock(error: BaseException | None) -> bool:
    """The error, or one it was raised from (a flush wraps its database error in a
    CommandError), is a lock timeout."""
    seen = 0
    while error is not None and seen < 10:
        if "lock timeout" in str(error):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _other_sessions() -> str:
    import psycopg
    from django.db import connection

    try:
        with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
            rows = other.execute(
                "SELECT pid, pg_blocking_pids(pid), state, xact_start, left(query, 200)"
                " FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() ORDER BY xact_start NULLS LAST"
            ).fetchall()
    except Exception as exc:  # a diagnostic must not hide the failure
        return f"could not list them: {exc}"
    return "\n".join(" | ".join(str(v) for v in row) for row in rows) or "none"


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """On SQLite, leave out tests that need PostgreSQL (deselected, not skipped). The
    slow tests first (in their order): bin/test's workers take tests one at a time, so
    they start together rather than leaving one worker busy with them at the end."""
    from django.db import connection

    if connection.vendor != "postgresql":
        keep, dropped = [], []
        for item in items:
            (dropped if item.get_closest_marker("postgres") else keep).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def django_db_setup(
    request: Any,
    django_test_environment: None,
    django_db_blocker: Any,
    django_db_keepdb: bool,
    django_db_createdb: bool,
    django_db_modify_db_settings: None,
) -> Any:
    """pytest-django's, but where an owner role is configured (bin/test), the owner
    creates and migrates the test database (the grants follow the migrations) and the
    tests, like the servers they start, connect as the runtime role, as in production."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.test.utils import setup_databases, teardown_databases

    from oversight.audit.db_roles import OWNER_ALIAS, has_owner_database

    creator = OWNER_ALIAS if has_owner_database() else DEFAULT_DB_ALIAS
    keepdb = django_db_keepdb and not django_db_createdb
    with django_db_blocker.unblock():
        databases = setup_databases(
            verbosity=request.config.option.verbose,
            interactive=False,
            keepdb=keepdb,
            aliases={creator},
            serialized_aliases=set(),
        )
        if creator != DEFAULT_DB_ALIAS:
            connections[DEFAULT_DB_ALIAS].creation.set_as_test_mirror(
                connections[creator].settings_dict
            )
    yield
    if not keepdb:
        with django_db_blocker.unblock():
            teardown_databases(databases, verbosity=request.config.option.verbose)


@pytest.fixture(scope="session", autouse=True)
def _close_connection_pools(django_db_setup: None, django_db_blocker: Any) -> Any:
    """Pooled connections opened by other threads (consumers, servers' helpers) would keep
    the test database busy when pytest-django drops it at the end."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        for connection in connections.all():
            connection.close()  # this thread's connection goes back to the pool first
            if getattr(connection, "pool", None) is not None:
                connection.close_pool()


def make_user(django_user_model: Any, username: str, *role_names: str, **extra: Any) -> Any:
    user = django_user_model.objects.create_user(
        username=username, password="pw", email=f"{username}@example.com", **extra
    )
    for role in role_names:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def admin_user(django_user_model: Any) -> Any:
    return make_user(django_user_model, "ada", roles.ADMIN)


@pytest.fixture
def owner(django_user_model: Any) -> Any:
    return make_user(django_user_model, "alice", roles.OWNER, first_name="Alice")


@pytest.fixture
def teammate(django_user_model: Any) -> Any:
    return make_user(django_user_model, "carol")


@pytest.fixture
def outsider(django_user_model: Any) -> Any:
    return make_user(django_user_model, "mallory", roles.OWNER)


@pytest.fixture
def reviewer(django_user_model: Any) -> Any:
    return make_user(django_user_model, "rita", roles.REVIEWER)


@pytest.fixture
def auditor(django_user_model: Any) -> Any:
    return make_user(django_user_model, "aaron", roles.AUDITOR)


@pytest.fixture
def team(owner: Any, teammate: Any) -> Any:
    team = team_create(actor=SYSTEM, name="payments")
    team_add_member(actor=SYSTEM, team=team, user=owner)
    team_add_member(actor=SYSTEM, team=team, user=teammate)
    return team


@pytest.fixture
def other_team(outsider: Any) -> Any:
    team = team_create(actor=SYSTEM, name="growth")
    team_add_member(actor=SYSTEM, team=team, user=outsider)
    return team


@pytest.fixture
def agent(team: Any, owner: Any) -> Any:
    return agent_create(
        actor=SYSTEM,
        name="Refund bot",
        slug="refund-bot",
        purpose="Issues refunds for support tickets.",
        owner=owner,
        team=team,
        environments=["staging", "production"],
        risk_tier="high",
    )


@pytest.fixture
def other_agent(other_team: Any, outsider: Any) -> Any:
    return agent_create(
        actor=SYSTEM,
        name="Email campaigner",
        slug="email-campaigner",
        purpose="Sends marketing email.",
        owner=outsider,
        team=other_team,
    )


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Celery tasks run inline, as in the zero-install default, also on the PostgreSQL and
    Redis run: no messages left in a queue no worker reads. Conftests that want it for
    every test of their folder use it from an autouse fixture."""
    from oversight.celery import app as celery_app

    conf = celery_app.conf
    saved = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = saved
