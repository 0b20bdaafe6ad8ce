"""A team's notification settings (channels, signing secret, test message, recent sends),
and each person's in-app inbox.

Every team view goes through ``team_for_channels``: 404 outside the team, 403 for a
member who is not an owner (admins may manage any team). Inbox views only ever touch
the person's own items: anyone else's is 404.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from oversight.accounts import roles
from oversight.audit.actors import Actor
from oversight.notifications import content, services
from oversight.notifications.constants import INBOX_PAGE_SIZE
from oversight.notifications.forms import TeamChannelsForm
from oversight.notifications.links import Outcome, decision_link_redeem
from oversight.notifications.models import InboxItem
from oversight.notifications.selectors import (
    inbox_items,
    inbox_items_now,
    inbox_unread_count,
    outbox_emails,
    team_channels_get,
    team_for_channels,
    team_notifications_recent,
)


@login_required
@require_http_methods(["GET", "POST"])
def team_channels_view(request: HttpRequest, slug: str) -> HttpResponse:
    team = team_for_channels(user=request.user, slug=slug)
    channels = team_channels_get(team=team)
    form = TeamChannelsForm(request.POST or None, instance=channels)
    if request.method == "POST" and form.is_valid():
        try:
            services.team_channels_update(
                actor=Actor.for_user(request.user),
                team=team,
                email_enabled=form.cleaned_data["email_enabled"],
                webhook_url=form.cleaned_data["webhook_url"],
                compensation_webhook_url=form.cleaned_data["compensation_webhook_url"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Notification settings saved.")
            return redirect("notifications:team", slug=team.slug)
    context = {
        "team": team,
        "channels": channels,
        "form": form,
        "notifications": team_notifications_recent(team=team),
        "any_address": settings.DEBUG,  # webhook_http.py: DEBUG lets any address through
    }
    return render(request, "notifications/team.html", context)


@login_required
@require_POST
def team_channels_test_view(request: HttpRequest, slug: str) -> HttpResponse:
    team = team_for_channels(user=request.user, slug=slug)
    try:
        notification = services.notification_test_send(
            actor=Actor.for_user(request.user), team=team
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Test message queued for {notification.recipient}.")
    return redirect("notifications:team", slug=team.slug)


@login_required
@require_POST
def team_channels_secret_view(request: HttpRequest, slug: str) -> HttpResponse:
    team = team_for_channels(user=request.user, slug=slug)
    services.team_channels_secret_regenerate(actor=Actor.for_user(request.user), team=team)
    messages.success(request, "New signing secret. Give it to your webhook receiver.")
    return redirect("notifications:team", slug=team.slug)


# --- the in-app inbox ----------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def inbox_view(request: HttpRequest) -> HttpResponse:
    page = Paginator(inbox_items(user=request.user), INBOX_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "items": inbox_items_now(items=page.object_list),
        "unread": inbox_unread_count(user=request.user),
        "dev_outbox": settings.DEV_OUTBOX,
    }
    return render(request, "notifications/inbox.html", context)


@login_required
@require_POST
def inbox_read_view(request: HttpRequest, item_id: int) -> HttpResponse:
    """htmx swaps the item in place and the badge out of band; without htmx, back to
    the inbox."""
    try:
        item = services.inbox_item_mark_read(user=request.user, item_id=item_id)
    except InboxItem.DoesNotExist:
        raise Http404("No such item in your inbox.") from None
    if not request.htmx:
        return redirect("inbox:list")
    [item] = inbox_items_now(items=[item])
    context = {"item": item, "unread": inbox_unread_count(user=request.user), "oob": True}
    return render(request, "notifications/_inbox_item.html", context)


@login_required
@require_POST
def inbox_read_all_view(request: HttpRequest) -> HttpResponse:
    marked = services.inbox_mark_all_read(user=request.user)
    if marked:
        messages.success(request, f"Marked {marked} item{'s' if marked != 1 else ''} read.")
    return redirect("inbox:list")


# --- signed decision links -------------------------------------------------------------

_LINK_STATUS = {
    Outcome.INVALID: 400,
    Outcome.FOREIGN: 403,
    Outcome.USED: 410,
    Outcome.EXPIRED: 410,
    Outcome.DECIDED: 410,
}


@login_required
@require_GET
def decision_link_view(request: HttpRequest, token: str) -> HttpResponse:
    """Follow a link from an email, a chat message or the inbox: the action's page, once.

    Only ever a redirect or an explanation: the decision is the page's POST form.
    ``login_required`` brings an anonymous visitor back here after logging in.
    """
    redemption = decision_link_redeem(user=request.user, token=token)
    if redemption.outcome == Outcome.NOT_FOUND:
        raise Http404("No such action.")
    if redemption.outcome == Outcome.OPEN:
        return redirect("approvals:action", action_id=redemption.action_id)
    context = {"r": redemption, "link": redemption.link, "outcome": redemption.outcome}
    return render(
        request,
        "notifications/decision_link.html",
        context,
        status=_LINK_STATUS[redemption.outcome],
    )


# --- the dev outbox ----------------------------------------------------------------------

_URL = re.compile(r"https?://\S+")


def _linked(text: str) -> SafeString:
    """The plain-text body, escaped, with this site's links made clickable as paths (so
    they work on whatever port the demo runs); other addresses stay text."""
    site = settings.SITE_URL.rstrip("/")
    parts, last = [], 0
    for match in _URL.finditer(text):
        url = match.group(0)
        parts.append(escape(text[last : match.start()]))
        if url.startswith(site + "/"):
            parts.append(format_html('<a href="{}">{}</a>', url[len(site) :], url))
        else:
            parts.append(escape(url))
        last = match.end()
    parts.append(escape(text[last:]))
    return mark_safe("".join(str(p) for p in parts))  # noqa: S308 - every part escaped above


@login_required
@require_GET
def outbox_view(request: HttpRequest) -> HttpResponse:
    """The emails sent (DEV_OUTBOX only): admins see all, others those to their address."""
    if not settings.DEV_OUTBOX:
        raise Http404("The outbox is shown only in development (DEV_OUTBOX).")
    page = Paginator(outbox_emails(user=request.user), INBOX_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    emails = []
    for notification in page.object_list:
        subject, body = content.render_email(notification.payload)
        emails.append({"n": notification, "subject": subject, "body": _linked(body)})
    context = {"page": page, "emails": emails, "everyone": roles.is_admin(request.user)}
    return render(request, "notifications/outbox.html", context)
