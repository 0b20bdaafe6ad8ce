"""Every scenario runs once per driver module in drivers/, against the live world."""

from __future__ import annotations

from typing import Any

import pytest

from . import drivers
from .harness import WORLD_ENV, Driver, Reviewer, World


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "driver" in metafunc.fixturenames:
        names = drivers.names()
        metafunc.parametrize("driver", names, ids=names, indirect=True)


@pytest.fixture(scope="session")
def world() -> World:
    found = World.from_env()
    if found is None:
        pytest.skip(f"{WORLD_ENV} is not set: bin/test-sdk prepares a live server and its world")
    return found


@pytest.fixture
def driver(request: Any) -> Driver:
    name = request.param
    try:
        return drivers.load(name)
    except ImportError as exc:
        pytest.fail(
            f"the {name!r} driver cannot be loaded ({exc}): its integration's extra is not "
            "installed, and CI installs every extra (pip install './clients/python[EXTRA]')",
            pytrace=False,
        )


@pytest.fixture
def reviewer(world: World) -> Reviewer:
    return Reviewer(world)
