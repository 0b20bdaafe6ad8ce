from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from oversight.accounts.forms import TeamReviewerForm
from oversight.accounts.models import Team
from oversight.accounts.roles import RoleRequired, is_admin
from oversight.accounts.selectors import may_manage_reviewers, team_list
from oversight.agents.access import AgentAccessDenied
from oversight.agents.selectors import agents_with_perm
from oversight.approvals.eligibility import team_unsatisfiable_rules
from oversight.approvals.selectors import recent_actions
from oversight.core.metrics import metrics_exposition
from oversight.core.selectors import overview_panels, overview_series
from oversight.killswitch.models import Scope
from oversight.killswitch.permissions import can_press
from oversight.killswitch.selectors import Target
from oversight.lib.paging import Page

# Load balancers give up on a probe after a few seconds; answer before they do, whatever
# a dependency does (a pool waiting for a server that is down, a host that drops packets).
# The promise is 2 s; the second left over is for the request itself on a busy machine
# (1.5 s left too little: 2.2 s once, with every core taken by a test run).
HEALTHZ_WITHIN_SECONDS = 1.0


def _check_database() -> dict[str, object]:
    """In a thread of its own (see healthz), whose connection goes back to the pool."""
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure is a health answer, not a crash
        return {"ok": False, "vendor": connection.vendor, "error": type(exc).__name__}
    finally:
        connection.close()
    return {
        "ok": True,
        "vendor": connection.vendor,
        "ms": round((time.perf_counter() - started) * 1000, 2),
    }


def _check_redis() -> dict[str, object]:
    if not settings.REDIS_URL:
        return {"ok": True, "configured": False}
    import redis

    started = time.perf_counter()
    try:
        with redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        ) as client:  # closed after: one connection per probe, not one left per probe
            client.ping()
    except Exception as exc:  # any failure is a health answer, not a crash
        return {"ok": False, "configured": True, "error": type(exc).__name__}
    return {"ok": True, "configured": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


def _checks_in_time(
    checks: dict[str, Callable[[], dict[str, object]]],
) -> dict[str, dict[str, object]]:
    """Run the checks side by side; one with no answer in time has failed. A check left
    running ends on its own timeouts (the pool's, Redis's) in its thread."""
    threads = ThreadPoolExecutor(len(checks), thread_name_prefix="healthz")
    running = {name: threads.submit(check) for name, check in checks.items()}
    threads.shutdown(wait=False)
    wait(running.values(), timeout=HEALTHZ_WITHIN_SECONDS)
    late: dict[str, object] = {"ok": False, "error": f"no answer in {HEALTHZ_WITHIN_SECONDS} s"}
    return {name: future.result() if future.done() else late for name, future in running.items()}


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever a page links (and for responses that link
    nothing, such as the API's): the site's icon."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Public liveness and readiness: 200 when every configured dependency answers, else 503,
    in under two seconds either way."""
    checks = _checks_in_time({"database": _check_database, "redis": _check_redis})
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503
    )


def _bearer_ok(header: str) -> bool:
    """The scraper's token against the SHA-256 in settings, in constant time."""
    expected = settings.METRICS_TOKEN_SHA256
    given = header.removeprefix("Bearer ").strip()
    if not expected or not given:
        return False
    return hmac.compare_digest(hashlib.sha256(given.encode()).hexdigest(), expected)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for a scraper with the bearer token or a logged-in admin.

    No login redirect: a scraper is told 401 (403 for a person who is not an admin).
    """
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        allowed = _bearer_ok(header)
    elif request.user.is_authenticated:
        if not is_admin(request.user):
            return HttpResponse("Admins only.\n", status=403, content_type="text/plain")
        allowed = True
    else:
        allowed = False
    if not allowed:
        response = HttpResponse("Unauthorised.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)


async def ping(request: HttpRequest) -> JsonResponse:
    """Liveness without touching any dependency; also the bare baseline in bench/decide.py."""
    return JsonResponse({"pong": True})


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The overview: activity charts, what needs a person (alerts, overdue reviews, unowned
    agents, approvals waiting), and live actions of every agent the person may see."""
    context = {
        "actions": recent_actions(user=request.user),
        "series": overview_series(user=request.user, now=timezone.now()),
        **overview_panels(user=request.user),
    }
    return render(request, "core/dashboard.html", context)


@never_cache
@login_required
@require_GET
def overview_data(request: HttpRequest) -> JsonResponse:
    """The charts' data, polled by static/js/overview.js."""
    return JsonResponse(overview_series(user=request.user, now=timezone.now()))


@never_cache
@login_required
@require_GET
def overview_panels_view(request: HttpRequest) -> HttpResponse:
    """The panels and the waiting count, polled by htmx."""
    context = {**overview_panels(user=request.user), "poll": True}
    return render(request, "core/_overview_panels.html", context)


@login_required
@require_GET
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    team = team_list(user=request.user).filter(slug=slug).first()
    member = team is not None  # or an admin; not a reviewer who only sees some agents
    if team is None:  # a reviewer granted some of the team's agents sees those
        granted = agents_with_perm(user=request.user).filter(team__slug=slug).first()
        team = granted.team if granted else None
    if team is None:
        raise Http404("No such team.")
    return team_page(request, team, member=member)


def team_page(request: HttpRequest, team: Team, *, member: bool, status: int = 200) -> HttpResponse:
    """The team page, of ``team`` as given (a refused change shows what was typed), with
    the agents of it the person may see."""
    visible = agents_with_perm(user=request.user).filter(team=team).select_related("owner")
    agents = list(visible.order_by("name"))
    target = Target(Scope.TEAM, team=team)
    can_manage = may_manage_reviewers(user=request.user, team=team)
    context = {  # a team's agents are few: all on one page
        "team": team,
        "member": member,
        "agents": agents,
        "page": Page(agents, number=1, total=len(agents), size=max(1, len(agents))),
        "can_press": can_press(request.user, target),
        "reviewers": list(team.reviewers),
        "can_manage_reviewers": can_manage,
        "reviewer_form": TeamReviewerForm(team=team) if can_manage else None,
        # Those who can add reviewers are told which hold rules nobody can satisfy.
        "unsatisfiable": team_unsatisfiable_rules(team=team) if can_manage else [],
        "can_change_control": is_admin(request.user),
        "tiers": Team._meta.get_field("staged_releases_from").choices,
    }
    return render(request, "core/team.html", context, status=status)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403, saying why in the words it was refused with, and who could change that: an
    agent's owner grants access to it, an admin gives roles; otherwise (a retired agent,
    separation of duties, change control) nothing granted would help, and it says none."""
    hint = ""
    if isinstance(exception, AgentAccessDenied):
        hint = "The agent's owner or an admin can grant you access to it."
    elif isinstance(exception, RoleRequired):
        hint = "An admin gives people their roles."
    return render(request, "403.html", {"exception": str(exception), "hint": hint}, status=403)
