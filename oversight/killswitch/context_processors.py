from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from oversight.killswitch.selectors import engaged_switches_for


def killswitches(request: HttpRequest) -> dict[str, Any]:
    return {"engaged_switches": engaged_switches_for(user=request.user)}
