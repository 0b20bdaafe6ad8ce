"""Starting a rollout from a release's page."""

from __future__ import annotations

from typing import Any

from django import forms

from oversight.releases.models import DEFAULT_MIN_DECISIONS, DEFAULT_PLAN, Stage
from oversight.releases.rollouts import plan_check


class RolloutStartForm(forms.Form):
    stage = forms.ChoiceField(
        label="Start at",
        choices=[
            (Stage.STAGING, "Staging: staging tokens decide under it"),
            (Stage.SHADOW, "Shadow: evaluated beside stable, never enforced"),
            (Stage.CANARY, "Canary: a share of sessions decides under it"),
        ],
        initial=Stage.STAGING,
    )
    plan = forms.CharField(
        label="Canary shares (%)",
        initial=", ".join(str(share) for share in DEFAULT_PLAN),
        help_text=(
            "Increasing percentages, the first below 100; 100 means full (the candidate"
            " becomes stable)."
        ),
        max_length=60,
    )
    min_decisions = forms.IntegerField(
        label="Decisions per stage",
        initial=DEFAULT_MIN_DECISIONS,
        min_value=1,
        max_value=1_000_000,
        help_text=(
            "Under the candidate, before the guard advances a clean stage (at least 50: "
            "the fewest it judges a stage from)."
        ),
    )
    auto_advance = forms.BooleanField(
        label="Advance on its own when a stage is clean", required=False, initial=True
    )

    def __init__(self, *args: Any, staged_only: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if staged_only:  # the team's change control: an approved rollout from staging
            stage = self.fields["stage"]
            assert isinstance(stage, forms.ChoiceField)
            stage.choices = [c for c in stage.choices if c[0] == Stage.STAGING]
            stage.help_text = (
                "This agent's team requires an approved, staged rollout: it starts at staging."
            )

    def errors_said(self) -> str:
        """The form's errors in one line, each after its field's label."""
        said = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else ""
            said.append(f"{label}: {' '.join(errors)}" if label else " ".join(errors))
        return "; ".join(said)

    def clean_plan(self) -> list[int]:
        text = self.cleaned_data["plan"]
        try:
            plan = [int(part) for part in text.replace(" ", "").split(",") if part]
        except ValueError:
            raise forms.ValidationError("Write whole percentages separated by commas.") from None
        return plan_check(plan)  # the service checks it again; this puts it by the field

    def arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "stage": data["stage"],
            "plan": data["plan"],
            "min_decisions": data["min_decisions"],
            "auto_advance": data["auto_advance"],
        }
