"""The audit log's trust pages as an admin uses them, in Chromium against the real ASGI
server and a real Celery worker: the chain's state, a verification run to 100 % with its
progress bar, one event's hashes and inclusion proof, and an evidence bundle that
verifies without the project. Screenshots of both pages, desktop and phone."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent
from oversight.audit import signing
from oversight.audit.checkpoints import checkpoint_write
from oversight.audit.models import AuditEvent, CheckpointDelivery, SinkState, VerificationRun
from tests.audit.helpers import record
from tests.audit.trust_helpers import verify_bundle_offline
from tests.browser.test_registry_flow import log_in
from tests.servers import asgi_server, celery_worker

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SHOTS = Path(tempfile.gettempdir()) / "shots_audit"  # /tmp/shots_audit
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# What sticks out of the page, leaving out what scrolls inside a box of its own.
_WIDER = """(limit) => {
  const boxed = (e) => {
    for (let p = e.parentElement; p; p = p.parentElement) {
      if (["auto", "scroll", "hidden"].includes(getComputedStyle(p).overflowX)) return true;
    }
    return false;
  };
  return Array.from(document.querySelectorAll("body *"))
    .filter((e) => e.getBoundingClientRect().right > limit + 1 && !boxed(e))
    .map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`)
    .slice(0, 8);
}"""


def assert_no_sideways_scroll(page: Page) -> None:
    """Wide tables may scroll inside their own box; the page itself may not."""
    limit = page.viewport_size["width"]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= limit, f"the page is {width}px wide: {page.evaluate(_WIDER, limit)}"


@pytest.fixture
def sink(settings: Any, tmp_path: Path) -> str:
    """One checkpoint directory for this test, the server and the worker."""
    value = f"dir:{tmp_path / 'checkpoints'}"
    settings.AUDIT_CHECKPOINT_SINKS = [value]
    return value


@pytest.fixture
def live_with_worker(transactional_db: None, sink: str) -> Iterator[str]:
    """The server (as tests/browser/conftest.py's live_url) and a worker, both writing
    checkpoints to this test's directory; verification runs go through Redis to it."""
    env = {"AUDIT_CHECKPOINT_SINKS": sink}
    server_env = {**env, "ALLOWED_HOSTS": "127.0.0.1", "DJANGO_ALLOW_ASYNC_UNSAFE": ""}
    with celery_worker(extra_env=env), asgi_server(extra_env=server_env) as url:
        yield url


def wait_until_delivered(timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while CheckpointDelivery.objects.exclude(state=SinkState.DELIVERED).exists():
        assert time.monotonic() < deadline, "the worker did not deliver the checkpoint"
        time.sleep(0.1)


def test_an_admin_verifies_the_log_opens_an_event_and_downloads_a_bundle(
    page: Page, live_with_worker: str, admin_user: Any, agent: Agent, tmp_path: Path
) -> None:
    live_url = live_with_worker
    record(40)
    checkpoint = checkpoint_write()
    assert checkpoint is not None
    wait_until_delivered()
    record(2)  # newer than the checkpoint: not in it yet

    page.goto(f"{live_url}/audit/")
    log_in(page, "ada")
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    cp = page.locator("#checkpoint")
    expect(cp).to_contain_text(f"#{checkpoint.number}")
    expect(cp).to_contain_text(str(checkpoint.tree_size))
    expect(cp).to_contain_text(checkpoint.root[:16])
    expect(cp.locator(".sinks li")).to_contain_text("Delivered")
    expect(cp).to_contain_text("2 newer events will be in the next checkpoint")
    expect(page.locator("#signing-key")).to_contain_text(signing.key_id())
    expect(page.locator("#verification")).to_contain_text("The log has not been verified yet.")
    shot(page, "1-audit-page")
    assert_no_sideways_scroll(page)

    page.get_by_role("button", name="Verify the log now").click()
    verification = page.locator("#verification")
    expect(verification.locator(".pill")).to_have_text("Passed")
    expect(verification.locator(".verify-percent")).to_have_text("100 %")
    bar = verification.locator("progress")
    expect(bar).to_have_attribute("value", str(AuditEvent.objects.count()))
    assert bar.get_attribute("value") == bar.get_attribute("max")
    expect(verification).to_contain_text("against 1 checkpoint from the directory")
    expect(verification).not_to_have_attribute("hx-trigger", "every 1s")  # polling stopped
    run = VerificationRun.objects.get()
    assert (run.state, run.started_by, run.exit_code) == ("passed", "ada", 0)
    shot(page, "2-verified")

    seq = 17
    event = AuditEvent.objects.get(seq=seq)
    page.locator("#audit-results").get_by_role("link", name=str(seq), exact=True).click()
    expect(page).to_have_url(f"{live_url}/audit/events/{seq}/")
    expect(page.get_by_role("heading", name=f"#{seq}")).to_be_visible()
    hashes = page.locator("#event-hashes")
    expect(hashes).to_contain_text("Its content matches its hash.")
    expect(hashes).to_contain_text(event.prev_hash)
    expect(hashes).to_contain_text(event.hash)
    proof = page.locator("#inclusion-proof")
    expect(proof).to_contain_text("The inclusion proof verifies")
    expect(proof).to_contain_text(f"leaf {seq - 1} of the Merkle tree checkpoint #1 signed")
    expect(proof).to_contain_text("signature verifies with key")
    expect(proof.locator(".proof-path li")).not_to_have_count(0)
    shot(page, "3-event-page")

    page.set_viewport_size(PHONE)
    page.reload()
    expect(proof).to_contain_text("The inclusion proof verifies")
    shot(page, "4-event-page-phone")
    assert_no_sideways_scroll(page)
    page.goto(f"{live_url}/audit/")
    expect(page.locator("#verification .pill")).to_have_text("Passed")
    shot(page, "5-audit-page-phone")
    assert_no_sideways_scroll(page)

    page.set_viewport_size(DESKTOP)
    bundle_form = page.locator("#evidence-bundle")
    bundle_form.get_by_label("Agent").select_option(agent.slug)
    with page.expect_download() as download:
        bundle_form.get_by_role("button", name="Download bundle").click()
    assert download.value.suggested_filename.startswith("oversight-evidence-refund-bot-")
    saved = tmp_path / "bundle.zip"
    download.value.save_as(saved)
    done = verify_bundle_offline(saved.read_bytes(), tmp_path / "offline")
    assert done.returncode == 0, done.stderr
    assert "each in a signed checkpoint" in done.stdout

    bundle_form.get_by_label("From").fill("2001-01-01T00:00")
    bundle_form.get_by_label("Until").fill("2001-01-02T00:00")
    bundle_form.get_by_role("button", name="Download bundle").click()
    expect(page.get_by_text("No evidence bundle: No events match")).to_be_visible()
