"""Input forms for the registry: parse and validate, nothing else."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from oversight.accounts import selectors as account_selectors
from oversight.agents.constants import AgentStatus, Environment
from oversight.agents.models import Agent
from oversight.agents.selectors import AgentFilters, agent_owner_choices


class AgentForm(forms.ModelForm):
    environments = forms.MultipleChoiceField(
        choices=Environment.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Agent
        fields = [
            "name",
            "slug",
            "purpose",
            "owner",
            "team",
            "environments",
            "risk_tier",
            "review_interval_days",
        ]
        widgets = {"purpose": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "slug": "Used by tokens and manifests; fixed once created. Blank: made from the name.",
            "review_interval_days": "The owner re-certifies the agent this often.",
        }

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = account_selectors.owner_candidates(user=user)
        self.fields["owner"].label_from_instance = lambda u: u.get_full_name() or u.get_username()
        self.fields["team"].queryset = account_selectors.teams_for_new_agent(user=user)
        self.fields["slug"].required = False
        if self.instance.pk:
            # Tokens and manifests name the agent by slug; it never changes.
            del self.fields["slug"]
            self.fields["status"] = forms.ChoiceField(
                choices=AgentStatus.choices, initial=self.instance.status
            )
            if self.instance.owner_id:
                self.fields["owner"].queryset = self.fields["owner"].queryset | type(
                    self.instance.owner
                ).objects.filter(pk=self.instance.owner_id)
        else:
            self.initial.setdefault("owner", user.pk)
            self.initial.setdefault("environments", ["staging"])

    def clean_slug(self) -> str:
        slug = self.cleaned_data.get("slug", "")
        if slug and Agent.objects.filter(slug=slug).exists():
            raise forms.ValidationError("An agent with this slug already exists.")
        return slug


class AgentFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search")
    team = forms.ChoiceField(required=False)
    owner = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *AgentStatus.choices])

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        teams = account_selectors.team_list(user=user)
        self.fields["team"].choices = [("", "Any team")] + [(t.slug, t.name) for t in teams]
        owners = agent_owner_choices(user=user)
        self.fields["owner"].choices = [("", "Any owner")] + [(u, u) for u in owners]

    def filters(self) -> AgentFilters:
        if not self.is_valid():
            return AgentFilters()
        return AgentFilters(
            **{key: self.cleaned_data.get(key) or "" for key in ("q", "team", "owner", "status")}
        )


class AccessGrantForm(forms.Form):
    user = forms.ModelChoiceField(queryset=None, label="Person")  # type: ignore[arg-type]
    level = forms.ChoiceField(
        choices=[("viewer", "Viewer (read)"), ("reviewer", "Reviewer (read and approve)")]
    )

    def __init__(self, *args: Any, agent: Agent, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True).exclude(pk=agent.owner_id)
        self.fields["user"].queryset = users.order_by("username")
        self.fields["user"].label_from_instance = lambda u: (
            f"{u.get_full_name()} ({u.username})" if u.get_full_name() else u.username
        )
