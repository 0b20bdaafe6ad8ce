"""Tests of an integration need its extra. Where it is not installed they are skipped, the
reason naming the extra; where every extra must be installed (OVERSIGHT_SDK_EXTRAS=all, as
bin/test-sdk sets it) a missing one fails them instead, so that CI never skips silently.

    pytest.importorskip("langchain", reason=sdk_extras.reason("langchain"))
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from oversight_sdk._extras import missing

EVERY_EXTRA = os.environ.get("OVERSIGHT_SDK_EXTRAS") == "all"


def reason(extra: str) -> str:
    """Why tests of `extra` would be skipped; fails them at once when the extra is missing
    where every extra is required."""
    text = f"needs the {extra!r} extra: pip install './clients/python[{extra}]'"
    absent = missing(extra)
    if absent and EVERY_EXTRA:
        unavailable(f"{text} (no module {', '.join(absent)})")
    return text


def unavailable(text: str) -> NoReturn:
    """Skip (or fail, where every extra is required) for an integration that is not here."""
    if EVERY_EXTRA:
        pytest.fail(f"{text}; OVERSIGHT_SDK_EXTRAS=all requires every extra", pytrace=False)
    pytest.skip(text, allow_module_level=True)
