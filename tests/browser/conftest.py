"""Browser tests: Debian's Chromium, driven by Playwright, against the real ASGI server.

Every test here is marked ``browser`` and ``postgres``: the server runs in another
process, so it needs a database it can share with the test (SQLite's test database
lives in memory).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.servers import asgi_server

HERE = Path(__file__).resolve().parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

expect.set_options(timeout=10_000)


@pytest.hookimpl(tryfirst=True)  # before tests/conftest.py deselects postgres tests on SQLite
def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Mark every test under tests/browser (and only those) as browser + postgres."""
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
    with pytest.MonkeyPatch.context() as mp:
        # Playwright's sync API runs an asyncio event loop in this (the main) thread
        # from start() until stop(). Django sees that running loop and refuses ORM
        # calls from the test body and from fixtures (SynchronousOnlyOperation), even
        # though they are ordinary blocking calls in a plain synchronous test. Tests
        # only, and only while Playwright runs: allow them. The server under test does
        # not inherit this (see live_url), so its async safety is still checked.
        # Package scope, not session scope: the loop stays "running" until stop(),
        # which would also break ORM calls and async_to_sync in tests collected later.
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        playwright = sync_playwright().start()
        try:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
        finally:
            playwright.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context (no cookies) per test; an uncaught JavaScript error fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    js_errors: list[str] = []
    page.on("pageerror", lambda error: js_errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not js_errors, f"JavaScript errors in the page: {js_errors}"


@pytest.fixture
def live_url(transactional_db: None) -> Iterator[str]:
    """The base URL of uvicorn serving Oversight on the test database.

    ``transactional_db`` commits what the test creates, so the server's own
    connections see it. One server per test, started after the previous test's
    flush: the flush recreates content types with new ids, and a longer-lived
    server would keep stale ids in its ContentType cache.
    """
    server_env = {
        # tests.settings keeps production's empty ALLOWED_HOSTS (DEBUG is off), and only
        # Django's own test client gets "testserver" added: allow the loopback address.
        "ALLOWED_HOSTS": "127.0.0.1",
        # An empty value switches Django's async-safety check back on in the server.
        "DJANGO_ALLOW_ASYNC_UNSAFE": "",
    }
    with asgi_server(extra_env=server_env) as url:
        yield url
