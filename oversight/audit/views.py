from __future__ import annotations

from dataclasses import asdict

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from oversight.accounts import roles
from oversight.accounts.roles import RoleRequired
from oversight.audit import export, verbs
from oversight.audit.actors import Actor
from oversight.audit.forms import AuditFilterForm, BundleForm
from oversight.audit.selectors import AuditFilters, audit_export_events, audit_page
from oversight.audit.services import audit_record_standalone
from oversight.audit.trust_selectors import chain_state
from oversight.lib.htmx import bad_request, render_page_or_fragment, wants_fragment

_FORMATS = {
    "csv": (export.csv_lines, "text/csv; charset=utf-8"),
    "jsonl": (export.jsonl_lines, "application/x-ndjson; charset=utf-8"),
}


def _filter_form(request: HttpRequest) -> AuditFilterForm:
    if not roles.can_read_audit_log(request.user):
        raise RoleRequired("The audit log is for admins and auditors.")
    return AuditFilterForm(request.GET or None, user=request.user)


@login_required
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    form = _filter_form(request)
    page = None
    if not form.is_bound:
        page = audit_page(user=request.user, filters=AuditFilters(), before=None)
    elif form.is_valid():
        before = form.cleaned_data.get("before")
        page = audit_page(user=request.user, filters=form.filters(), before=before)
    query = request.GET.copy()
    query.pop("before", None)
    fragment = wants_fragment(request)  # a filter swap replaces the results only...
    # ...and the export links, out of band, so they export what the results show.
    context = {"form": form, "page": page, "query": query.urlencode(), "exports_oob": fragment}
    if not fragment:
        context["chain"] = chain_state(user=request.user)
        context["bundle_form"] = BundleForm(user=request.user)
    return render_page_or_fragment(request, "audit/list.html", "audit/_results.html", context)


def _errors_in_words(form: AuditFilterForm) -> list[str]:
    """Each error with the label of its field, as the page lists them."""
    said = [
        f"{form[name].label}: {error}"
        for name in form.errors
        if name != "__all__"
        for error in form.errors[name]
    ]
    return said + list(form.non_field_errors())


@login_required
@require_GET
def audit_export(request: HttpRequest, fmt: str) -> HttpResponse:
    form = _filter_form(request)
    if form.is_bound and not form.is_valid():
        return bad_request(request, "Not exported: " + " ".join(_errors_in_words(form)))
    filters = form.filters() if form.is_bound else AuditFilters()
    generate, content_type = _FORMATS[fmt]
    audit_record_standalone(
        actor=Actor.for_user(request.user),
        verb=verbs.AUDIT_EXPORTED,
        target=("audit.log", fmt, f"audit log ({fmt})"),
        after={key: str(value) for key, value in asdict(filters).items() if value},
    )
    response = StreamingHttpResponse(
        generate(audit_export_events(user=request.user, filters=filters)), content_type=content_type
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="oversight-audit-{stamp}.{fmt}"'
    return response
