"""The policy page of an agent: grants, rules, limits, and a "try it" box."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from oversight.agents.access import get_agent_for_user
from oversight.agents.constants import CHANGE
from oversight.agents.models import Agent
from oversight.agents.permissions import user_has_agent_perm
from oversight.approvals.eligibility import rule_eligible_approvers, rules_approvers
from oversight.audit.actors import Actor
from oversight.gateway.preview import decision_preview
from oversight.policy import services
from oversight.policy.forms import GrantForm, LimitForm, RuleForm, TryItForm
from oversight.policy.models import Grant, Limit, Rule
from oversight.policy.selectors import condition_help, try_it_example
from oversight.releases.selectors import working_copy

_KINDS: dict[str, tuple[type, type[ModelForm]]] = {
    "grant": (Grant, GrantForm),
    "rule": (Rule, RuleForm),
    "limit": (Limit, LimitForm),
}


def _context(request: HttpRequest, agent: Agent, **forms: object) -> dict[str, object]:
    rules = list(agent.rules.select_related("agent__team").prefetch_related("approver_people"))
    approvers = rules_approvers(rules)
    return {
        "agent": agent,
        "can_change": user_has_agent_perm(request.user, CHANGE, agent),
        "grants": agent.grants.all(),
        "rules": [(rule, approvers.get(rule.pk)) for rule in rules],
        "limits": agent.limits.all(),
        "team_limits": Limit.objects.filter(team_id=agent.team_id),
        "global_limits": Limit.objects.filter(agent__isnull=True, team__isnull=True),
        "grant_form": forms.get("grant_form") or GrantForm(prefix="grant"),
        "rule_form": forms.get("rule_form") or RuleForm(prefix="rule"),
        "condition_help": condition_help(user=request.user, agent=agent),
        "limit_form": forms.get("limit_form") or LimitForm(prefix="limit"),
        "try_form": forms.get("try_form") or TryItForm(example=try_it_example(agent=agent)),
        "preview": forms.get("preview"),
        "open_form": forms.get("open_form", ""),
        "working_copy": working_copy(agent=agent),
    }


def _save(request: HttpRequest, form: ModelForm, save) -> bool:  # type: ignore[no-untyped-def]
    """Run the service; put its validation errors (patterns, CEL) on the form's fields."""
    try:
        save()
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc.messages)
        return False
    return True


def _who_approves(obj: object) -> str:
    """Said at once when a hold rule is saved: who can approve what it holds."""
    if not isinstance(obj, Rule) or obj.effect != "hold":
        return ""
    obj.refresh_from_db()
    names = ", ".join(u.get_username() for u in rule_eligible_approvers(obj))
    needs = f"{obj.approvals} approval{'s' if obj.approvals != 1 else ''} needed"
    return f" Who can approve what it holds ({needs}): {names}."


@login_required
@require_GET
def policy_page(request: HttpRequest, slug: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug)
    return render(request, "policy/page.html", _context(request, agent))


@login_required
@require_POST
def policy_add(request: HttpRequest, slug: str, kind: str) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    model, form_class = _KINDS[kind]
    form = form_class(request.POST, prefix=kind, instance=model(agent=agent))
    actor = Actor.for_user(request.user)

    def save() -> object:
        extra = {}
        if kind == "rule":
            extra["approver_people"] = form.cleaned_data.get("approver_people")
        return services.policy_object_create(actor=actor, obj=form.instance, **extra)

    if form.is_valid() and _save(request, form, save):
        messages.success(request, f"Added {kind} {form.instance}.{_who_approves(form.instance)}")
        return redirect("policy:page", slug=agent.slug)
    context = _context(request, agent, **{f"{kind}_form": form, "open_form": kind})
    return render(request, "policy/page.html", context, status=422)


@login_required
@require_http_methods(["GET", "POST"])
def policy_edit(request: HttpRequest, slug: str, kind: str, pk: int) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    model, form_class = _KINDS[kind]
    obj = get_object_or_404(model, pk=pk, agent=agent)
    form = form_class(request.POST or None, instance=model.objects.get(pk=obj.pk))
    if request.method == "POST" and form.is_valid():
        changes = {field: form.cleaned_data[field] for field in form.fields}
        actor = Actor.for_user(request.user)
        if _save(
            request, form, lambda: services.policy_object_update(actor=actor, obj=obj, **changes)
        ):
            messages.success(request, f"Saved {kind} {obj}.{_who_approves(obj)}")
            return redirect("policy:page", slug=agent.slug)
    context = {"agent": agent, "form": form, "kind": kind, "obj": obj}
    if kind == "rule":
        context["condition_help"] = condition_help(user=request.user, agent=agent)
    return render(request, "policy/edit.html", context)


@login_required
@require_POST
def policy_delete(request: HttpRequest, slug: str, kind: str, pk: int) -> HttpResponse:
    agent = get_agent_for_user(request, slug, perm=CHANGE)
    model, _form = _KINDS[kind]
    obj = get_object_or_404(model, pk=pk, agent=agent)
    services.policy_object_delete(actor=Actor.for_user(request.user), obj=obj)
    messages.success(request, f"Removed {kind} {obj}.")
    return redirect("policy:page", slug=agent.slug)


@login_required
@require_POST
def policy_try(request: HttpRequest, slug: str) -> HttpResponse:
    """Decide a pasted action against the current policy; nothing is recorded or charged."""
    agent = get_agent_for_user(request, slug)
    form = TryItForm(request.POST)
    preview = None
    if form.is_valid():
        data = form.cleaned_data["request"]
        preview = decision_preview(
            agent=agent,
            environment=form.cleaned_data["environment"],
            action=data["action"],
            resource=data["resource"],
            params=data["params"],
        )
    if request.htmx:
        return render(
            request, "policy/_tryit.html", {"agent": agent, "try_form": form, "preview": preview}
        )
    return render(
        request, "policy/page.html", _context(request, agent, try_form=form, preview=preview)
    )
