"""Forms for grants, rules and limits. Patterns and conditions are checked by the service."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from oversight.accounts.roles import ALL_ROLES
from oversight.agents.constants import Environment
from oversight.lib.forms import ModelBoundsForm
from oversight.policy.constants import Approvers
from oversight.policy.models import Grant, Limit, Rule
from oversight.policy.validation import PASSED_EXPIRY, expiry_passed


class GrantForm(ModelBoundsForm):
    """A grant and its reversibility contract (docs/rewind.md)."""

    class Meta:
        model = Grant
        fields = [
            "action",
            "resource",
            "expires_at",
            "reversibility",
            "undo_action",
            "undo_params",
            "undo_window_seconds",
        ]
        labels = {
            "reversibility": "Can its actions be undone?",
            "undo_action": "Undo action",
            "undo_params": "Undo params",
            "undo_window_seconds": "Undo offered for (seconds)",
        }
        help_texts = {
            "undo_params": (
                "Reversible only: a JSON map of name to CEL over the original's params, before"
                ' and after, e.g. {"charge": "params.charges[0]", "amount": "params.amount"}.'
            ),
            "undo_window_seconds": "Reversible only; 7 days when left empty.",
        }
        widgets = {
            "action": forms.TextInput(attrs={"placeholder": "payments.refund or crm.contact.*"}),
            "resource": forms.TextInput(attrs={"placeholder": "stripe:charge/*"}),
            "expires_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "undo_action": forms.TextInput(attrs={"placeholder": "payments.charge"}),
            "undo_params": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reversibility"].choices = [("", "Not said (unknown)")] + [
            choice for choice in self.fields["reversibility"].choices if choice[0]
        ]
        self.fields["undo_params"].required = False

    def clean_undo_params(self) -> Any:
        return self.cleaned_data.get("undo_params") or {}

    def clean_expires_at(self) -> Any:
        expires = self.cleaned_data.get("expires_at")
        if expiry_passed(expires, self.instance.expires_at if self.instance.pk else None):
            raise forms.ValidationError(PASSED_EXPIRY)
        return expires


class RuleForm(ModelBoundsForm):
    """Who approves: anyone with approve access (the default), the team's reviewers, a
    role, or named people; enough of them must be eligible (checked by the service)."""

    approver_role = forms.ChoiceField(
        choices=[("", "—")] + [(role, role) for role in ALL_ROLES],
        required=False,
        label="Approver role",
        help_text="When approvers are people with a role.",
    )
    approver_people = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Named approvers",
        help_text="When approvers are named people; each needs reviewer access (or is an admin).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["approvers"].required = False  # left out: anyone with approve access

    def clean_approvers(self) -> str:
        return self.cleaned_data.get("approvers") or Approvers.ACCESS

    class Meta:
        model = Rule
        fields = ["name", *Rule.MATCH_FIELDS, *Rule.HOLD_ONLY_FIELDS]
        labels = {
            "expires_in_seconds": "Expires after (seconds)",
            "condition": "When (CEL)",
            "separation_of_duties": "Not the owner (separation of duties)",
            "approvers": "Who approves",
        }
        widgets = {
            "condition": forms.TextInput(
                attrs={
                    "placeholder": "params.amount > 500",
                    "class": "mono",
                    "aria-describedby": "condition-help",
                    "spellcheck": "false",
                }
            ),
        }


class LimitForm(ModelBoundsForm):
    class Meta:
        model = Limit
        fields = [
            "name",
            "action",
            "resource",
            "window_seconds",
            "max_count",
            "sum_param",
            "max_sum",
            "on_exceed",
        ]
        labels = {"window_seconds": "Window (seconds)", "sum_param": "Sum of param"}
        widgets = {"sum_param": forms.TextInput(attrs={"placeholder": "amount"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        most = self.initial.get("max_sum")
        if isinstance(most, Decimal):  # 20000, not the column's 20000.0000
            self.initial["max_sum"] = f"{most.normalize():f}"


class TryItForm(forms.Form):
    """A request to try; it starts with ``example`` (the agent's latest), else a refund."""

    environment = forms.ChoiceField(choices=Environment.choices, initial=Environment.PRODUCTION)
    request = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "spellcheck": "false"}),
        initial=json.dumps(
            {
                "action": "payments.refund",
                "resource": "stripe:charge/ch_1",
                "params": {"amount": 900, "charges": ["ch_1"]},
            },
            indent=2,
        ),
        help_text='JSON with "action", "resource" and optional "params".',
    )

    def __init__(self, *args: Any, example: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if example is not None:
            self.fields["request"].initial = json.dumps(example, indent=2)

    def clean_request(self) -> dict[str, Any]:
        try:
            data = json.loads(self.cleaned_data["request"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        if not isinstance(data, dict):
            raise forms.ValidationError("Give a JSON object.")
        unknown = sorted(set(data) - {"action", "resource", "params"})
        if unknown:
            raise forms.ValidationError(f"Unknown key: {unknown[0]}.")
        if not isinstance(data.get("action"), str) or not isinstance(data.get("resource"), str):
            raise forms.ValidationError('"action" and "resource" must be strings.')
        if not isinstance(data.get("params", {}), dict):
            raise forms.ValidationError('"params" must be an object.')
        data.setdefault("params", {})
        return data
