"""Input forms for reviews: parse and validate, nothing else."""

from __future__ import annotations

from django import forms

from oversight.accounts.models import Team
from oversight.accounts.services import REVIEW_SETTINGS
from oversight.lib.forms import ModelBoundsForm
from oversight.reviews.services import MAX_NOTES


class RecertifyForm(forms.Form):
    purpose_confirmed = forms.BooleanField(
        required=True,
        label="The purpose above is still right, and the agent is still needed for it.",
        error_messages={
            "required": "Confirm that the purpose is still right, or retire the agent instead."
        },
    )
    notes = forms.CharField(
        required=False,
        max_length=MAX_NOTES,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: anything the next reviewer should know.",
    )


class RetireForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_NOTES,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why retire it?",
        error_messages={"required": "Say why the agent is retired."},
    )
    confirm = forms.BooleanField(
        required=True,
        label="Revoke its tokens, disable its grants and cancel its pending actions. "
        "This cannot be undone.",
        error_messages={"required": "Tick the box to confirm the retirement."},
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why the agent is retired.")
        return reason


class TeamReviewSettingsForm(ModelBoundsForm):
    """The periods the review, ownership and retirement jobs use for a team; the checks
    across fields are the model's (run by the service)."""

    class Meta:
        model = Team
        fields = list(REVIEW_SETTINGS)
        labels = {
            "review_reminder_days": "Reminder before a re-certification is due",
            "review_grace_days": "Tell the admins once a re-certification is overdue by",
            "review_pause_after_days": "Pause the agent once its re-certification is overdue by",
            "owner_grace_days": "Pause an unowned agent after",
            "inactivity_retire_days": "Retire an agent idle for",
            "retirement_notice_days": "Notice before retiring an idle agent",
        }
        # The model's help texts say "review"; the pages say re-certification.
        help_texts = {
            "review_reminder_days": "Remind the owner this many days before it is due.",
            "review_grace_days": "Tell the team's admins once it is overdue by more than this.",
            "review_pause_after_days": "Pause the agent once it is overdue by more than this.",
        }
