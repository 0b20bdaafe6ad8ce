"""The team's channel settings form; validation of the URL is the model's."""

from __future__ import annotations

from django import forms

from oversight.lib.forms import ModelBoundsForm
from oversight.notifications.models import TeamChannels


class TeamChannelsForm(ModelBoundsForm):
    # A URL typed without a scheme is taken as https, the only one allowed in production.
    webhook_url = TeamChannels._meta.get_field("webhook_url").formfield(
        assume_scheme="https", widget=forms.URLInput(attrs={"placeholder": "https://…"})
    )

    compensation_webhook_url = TeamChannels._meta.get_field("compensation_webhook_url").formfield(
        assume_scheme="https", widget=forms.URLInput(attrs={"placeholder": "https://…"})
    )

    class Meta:
        model = TeamChannels
        fields = ["email_enabled", "webhook_url", "compensation_webhook_url"]
