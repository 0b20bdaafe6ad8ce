"""Render a whole page, or only its fragment for an htmx request."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def render_page_or_fragment(
    request: HttpRequest, page: str, fragment: str, context: dict[str, Any]
) -> HttpResponse:
    """The fragment for htmx swaps; the full page otherwise, including when htmx restores
    history after a cache miss (it then swaps the answer into the whole <body>)."""
    htmx = getattr(request, "htmx", None)
    wants_fragment = bool(htmx) and not htmx.history_restore_request
    response = render(request, fragment if wants_fragment else page, context)
    patch_vary_headers(response, ["HX-Request"])  # caches must not mix the two answers
    return response
