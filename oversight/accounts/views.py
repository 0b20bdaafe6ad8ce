"""A person's own settings: her personal API tokens (the approvals API)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_POST

from oversight.accounts import services


def _page(request: HttpRequest, *, raw: str = "") -> HttpResponse:
    context = {"tokens": request.user.personal_tokens.all(), "new_token": raw}
    template = "accounts/_personal_tokens.html" if request.htmx else "accounts/tokens.html"
    response = render(request, template, context)
    add_never_cache_headers(response)  # a new token is shown in this response only
    return response


@login_required
@require_GET
def tokens(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    _token, raw = services.personal_token_create(
        user=request.user, name=request.POST.get("name", "")
    )
    return _page(request, raw=raw)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    services.personal_token_revoke(user=request.user, token_id=token_id)  # only her own
    return _page(request) if request.htmx else redirect("accounts:tokens")
