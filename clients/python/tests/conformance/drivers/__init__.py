"""One module per integration, each exposing `DRIVER` (see ../harness.py).

Every module here is found on its own: adding an integration's driver needs no edit
anywhere else. A driver whose integration's extra is not installed has its scenarios
skipped, or failed where every extra is required (tests/sdk_extras.py; CI installs every
extra and requires them all).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..harness import Driver


def names() -> list[str]:
    """Every driver module's name, without importing any."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str) -> Driver:
    """The module's DRIVER; its ImportError (a missing extra) propagates."""
    module = importlib.import_module(f"{__name__}.{name}")
    driver = getattr(module, "DRIVER", None)
    if driver is None:
        raise AttributeError(f"drivers/{name}.py exposes no DRIVER")
    return driver
