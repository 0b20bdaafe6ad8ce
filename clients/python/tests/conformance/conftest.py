"""Every scenario runs once per driver module in drivers/, against the live world."""

from __future__ import annotations

from typing import Any

import pytest
import sdk_extras

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
        sdk_extras.unavailable(f"the {name!r} driver cannot be loaded ({exc})")


@pytest.fixture
def reviewer(world: World) -> Reviewer:
    return Reviewer(world)
