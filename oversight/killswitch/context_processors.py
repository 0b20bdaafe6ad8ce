from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from oversight.killswitch.selectors import engaged_switches_for


def killswitches(request: HttpRequest) -> dict[str, Any]:
    switches = engaged_switches_for(user=request.user)
    return {
        "engaged_switches": switches,
        "global_switch": next((s for s in switches if s.scope == "global"), None),
    }
