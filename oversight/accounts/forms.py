"""Forms about teams."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from oversight.accounts.models import Team


class TeamReviewerForm(forms.Form):
    user = forms.ModelChoiceField(queryset=None, label="Person")  # type: ignore[arg-type]

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True)
        if team.reviewers_group_id is not None:
            users = users.exclude(groups=team.reviewers_group_id)
        self.fields["user"].queryset = users.order_by("username")
        self.fields["user"].label_from_instance = lambda u: (
            f"{u.get_full_name()} ({u.username})" if u.get_full_name() else u.username
        )
