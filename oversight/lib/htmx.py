"""Render a whole page, or only its fragment for an htmx request."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def wants_fragment(request: HttpRequest) -> bool:
    """An htmx swap, not a history restore after a cache miss (htmx then swaps the answer
    into the whole <body>, so it needs the page). Views use it to skip what only the full
    page shows."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def render_page_or_fragment(
    request: HttpRequest, page: str, fragment: str, context: dict[str, Any]
) -> HttpResponse:
    """The fragment for htmx swaps; the full page otherwise."""
    response = render(request, fragment if wants_fragment(request) else page, context)
    patch_vary_headers(response, ["HX-Request"])  # caches must not mix the two answers
    return response


def bad_request(request: HttpRequest, message: str) -> HttpResponse:
    """400, saying what was wrong with the address in words: the site's page for a person
    (and the words alone for an htmx swap or a script that reads text)."""
    if wants_fragment(request) or "text/html" not in request.headers.get("Accept", ""):
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
    return render(request, "400.html", {"message": message}, status=400)
