"""What answered decisions set off (their live rows, telling reviewers) runs in the order
they were answered, whichever decision thread decided them: an agent's decisions reach
the live feed in order even when one's rendering is slow."""

from __future__ import annotations

import contextvars
import threading
import time
from functools import partial

from django.core.asgi import get_asgi_application

from oversight.gateway import fastlane

_request = contextvars.ContextVar("request", default="none")


def _lane() -> fastlane.DecisionFastLane:
    lane = fastlane.DecisionFastLane(get_asgi_application())
    assert lane.threads._max_workers > 1  # else the order would hold trivially
    return lane


def test_a_slow_first_effect_is_not_overtaken_by_the_next_answers() -> None:
    lane = _lane()
    ran: list[int] = []
    done = threading.Event()
    try:
        lane._set_off([lambda: (time.sleep(0.3), ran.append(1))])
        for i in range(2, 6):
            lane._set_off([partial(ran.append, i)])
        lane._set_off([done.set])
        assert done.wait(10)
        assert ran == [1, 2, 3, 4, 5]
        # The queue drained; what comes after starts it again, still in order.
        again = threading.Event()
        lane._set_off([partial(ran.append, 6), partial(ran.append, 7)])
        lane._set_off([again.set])
        assert again.wait(10)
        assert ran == [1, 2, 3, 4, 5, 6, 7]
    finally:
        lane.threads.shutdown()


def test_a_failing_effect_leaves_the_rest_run_in_their_own_context() -> None:
    lane = _lane()
    seen: list[str] = []
    done = threading.Event()

    def fails() -> None:
        raise RuntimeError("a notice could not be sent")

    try:
        for name in ("first", "second"):
            token = _request.set(name)
            lane._set_off([fails, lambda: seen.append(_request.get())])
            _request.reset(token)
        lane._set_off([done.set])
        assert done.wait(10)
        assert seen == ["first", "second"]
        assert not lane.effects and not lane.effects_taken
    finally:
        lane.threads.shutdown()


def test_effects_set_off_once_the_lane_is_shut_down_do_not_wedge_the_queue() -> None:
    lane = _lane()
    lane.threads.shutdown()
    lane._set_off([lambda: None])  # not run, and said so; no exception to the server
    assert not lane.effects_taken and not lane.effects
