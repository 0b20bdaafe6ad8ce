"""The audit trust pages: the public key, the checkpoints, verification runs with their
progress, one event with its proof, and evidence bundles."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from oversight.accounts import roles
from oversight.accounts.roles import RoleRequired
from oversight.audit import signing
from oversight.audit.actors import Actor
from oversight.audit.bundle import BundleError
from oversight.audit.forms import BundleForm
from oversight.audit.selectors import audit_events
from oversight.audit.trust_selectors import (
    audit_event_detail,
    checkpoint_documents,
    verification_get,
)
from oversight.audit.trust_services import audit_bundle_export, verification_start


def _require_reader(request: HttpRequest) -> None:
    if not roles.can_read_audit_log(request.user):
        raise RoleRequired("The audit log is for admins and auditors.")


@require_GET
def public_key(request: HttpRequest) -> HttpResponse:
    """Public on purpose: whoever holds a checkpoint or a bundle compares its key with
    this one, and it proves nothing to keep it secret."""
    try:
        pem = signing.public_key_pem()
    except ImproperlyConfigured:
        raise Http404("No audit signing key is configured.") from None
    response = HttpResponse(pem, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response


@login_required
@require_GET
def checkpoints_jsonl(request: HttpRequest) -> StreamingHttpResponse:
    """For admins and auditors, like the log: the documents are signed and not secret,
    but their sizes and times trace the log's activity and each lists the hashes of its
    events. An auditor saves the file and passes it to ``verify.py export --checkpoints
    FILE`` (or ``audit_verify --checkpoints``)."""
    _require_reader(request)
    response = StreamingHttpResponse(
        checkpoint_documents(user=request.user), content_type="application/x-ndjson"
    )
    response["Content-Disposition"] = 'inline; filename="checkpoints.jsonl"'
    return response


def _verification_fragment(request: HttpRequest, pk: int) -> HttpResponse:
    progress = verification_get(user=request.user, pk=pk)
    if progress is None:
        raise Http404("No such verification.")
    return render(request, "audit/_verification.html", {"verification": progress})


@login_required
@require_POST
def verification_start_view(request: HttpRequest) -> HttpResponse:
    _require_reader(request)
    run, created = verification_start(actor=Actor.for_user(request.user))
    if request.htmx:
        return _verification_fragment(request, run.pk)
    if not created:
        messages.info(request, f"Verification #{run.pk} is already running.")
    return redirect("audit:list")


@login_required
@require_GET
def verification_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The fragment the page polls while a run goes; it stops polling once it is done."""
    _require_reader(request)
    return _verification_fragment(request, pk)


@login_required
@require_GET
def event_detail(request: HttpRequest, seq: int) -> HttpResponse:
    detail = audit_event_detail(user=request.user, seq=seq)
    if detail is None:
        raise Http404("No such event.")
    return render(request, "audit/event.html", {"detail": detail, "event": detail.event})


@login_required
@require_POST
def bundle_download(request: HttpRequest) -> HttpResponse:
    _require_reader(request)
    form = BundleForm(request.POST, user=request.user)
    if not form.is_valid():
        problems = "; ".join(error for errors in form.errors.values() for error in errors)
        messages.error(request, f"No evidence bundle: {problems}")
        return redirect("audit:list")
    try:
        bundle = audit_bundle_export(
            actor=Actor.for_user(request.user),
            events=audit_events(user=request.user),
            filters=form.filters(),
        )
    except BundleError as exc:
        messages.error(request, f"No evidence bundle: {exc}")
        return redirect("audit:list")
    response = HttpResponse(bundle.content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{bundle.name}"'
    return response
