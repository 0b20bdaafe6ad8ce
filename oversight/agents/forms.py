"""Input forms for the registry: parse and validate, nothing else."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from oversight.accounts import selectors as account_selectors
from oversight.accounts.models import Team
from oversight.agents.constants import AgentStatus, Environment
from oversight.agents.models import Agent
from oversight.agents.selectors import AgentFilters, agent_owner_choices, agent_team_choices
from oversight.agents.services import EDITABLE_FIELDS
from oversight.audit.verb_families import CHANGES, HISTORY_CHOICES
from oversight.lib.forms import ModelBoundsForm
from oversight.lib.humanize import person_name


class AgentForm(ModelBoundsForm):
    environments = forms.MultipleChoiceField(
        choices=Environment.choices, widget=forms.CheckboxSelectMultiple
    )
    # A URL typed without a scheme is taken as https (the service checks the rest).
    compensation_webhook_url = Agent._meta.get_field("compensation_webhook_url").formfield(
        assume_scheme="https", widget=forms.URLInput(attrs={"placeholder": "https://…"})
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
            "alert_response",
            "instructions",
            "model_name",
            "model_settings",
            "tools",
            "compensation_webhook_url",
        ]
        widgets = {
            "purpose": forms.Textarea(attrs={"rows": 3}),
            "instructions": forms.Textarea(attrs={"rows": 4}),
            "model_settings": forms.Textarea(attrs={"rows": 2}),
            "tools": forms.Textarea(attrs={"rows": 4}),
        }
        labels = {"review_interval_days": "Re-certify every (days)"}
        help_texts = {
            "slug": "Used by tokens and manifests; fixed once created. Blank: made from the name.",
            "review_interval_days": "The owner re-certifies the agent this often.",
            "alert_response": "What happens by itself when a serious alert opens.",
            "model_settings": 'A JSON object, e.g. {"temperature": 0.2}.',
            "tools": "A JSON list of {name, description, input_schema}.",
        }

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = account_selectors.owner_candidates(user=user)
        self.fields["owner"].label_from_instance = person_name
        self.fields["team"].queryset = account_selectors.teams_for_new_agent(user=user)
        self.fields["slug"].required = False
        # Optional in a post (API clients and older pages leave it out): keeps what is set.
        self.fields["alert_response"].required = False
        if self.instance.pk:
            # Tokens and manifests name the agent by slug; it never changes.
            del self.fields["slug"]
            # Retiring revokes tokens and disables grants: the Retire button does that.
            self.fields["status"] = forms.ChoiceField(
                choices=[c for c in AgentStatus.choices if c[0] != AgentStatus.RETIRED],
                initial=self.instance.status,
                help_text="Paused: its requests are refused until it is set active again "
                "(limits, monitoring and overdue re-certifications pause agents by "
                "themselves). To stop it at once, use the kill switch in the top bar.",
            )
            if self.instance.owner_id:
                self.fields["owner"].queryset = self.fields["owner"].queryset | type(
                    self.instance.owner
                ).objects.filter(pk=self.instance.owner_id)
            # The agent's team stays a choice for an owner outside it.
            teams = self.fields["team"].queryset
            self.fields["team"].queryset = Team.objects.filter(
                Q(pk__in=teams.values("pk")) | Q(pk=self.instance.team_id)
            ).order_by(*teams.query.order_by)
            # What the form showed goes back with it (a hidden input per field): a save
            # changes only what the editor changed, and not over someone else's change.
            for field in self.fields.values():
                field.show_hidden_initial = True
        else:
            self.initial.setdefault("owner", user.pk)
            self.initial.setdefault("environments", ["staging"])

    def edits(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The changes this post makes and, of those fields, what the form showed (for
        `agent_update`'s `expected`). A field posted without what was shown (an older
        page, a script) is taken as given."""
        changes, shown = {}, {}
        for name in EDITABLE_FIELDS:
            bound = self[name]
            if bound.html_initial_name not in self.data:
                changes[name] = self.cleaned_data[name]
            elif name in self.changed_data:
                changes[name] = self.cleaned_data[name]
                shown[name] = self._shown(name)
        return changes, shown

    def _shown(self, name: str) -> Any:
        field = self.fields[name]
        raw = field.hidden_widget().value_from_datadict(
            self.data, self.files, self[name].html_initial_name
        )
        try:
            return field.clean(raw)
        except forms.ValidationError:
            return raw

    def show_current(self, current: dict[str, Any]) -> None:
        """After a StaleEdit: the form shows what is there now as what it showed, so
        saving again replaces it knowingly."""
        self.data = self.data.copy()
        for name, value in current.items():
            field, key = self.fields[name], self[name].html_initial_name
            prepared = field.prepare_value(value.pk if hasattr(value, "pk") else value)
            if isinstance(prepared, list | tuple):
                self.data.setlist(key, [str(v) for v in prepared])
            else:
                self.data[key] = field.hidden_widget().format_value(prepared) or ""

    def _config(self, name: str, empty: Any) -> Any:
        """A config field left out of a post keeps what is set; a blank one is empty."""
        if self.prefix is None and name not in self.data:
            return getattr(self.instance, name)
        value = self.cleaned_data.get(name)
        return empty if value in (None, "") else value

    def clean_instructions(self) -> str:
        return self._config("instructions", "")

    def clean_model_name(self) -> str:
        return self._config("model_name", "")

    def clean_model_settings(self) -> Any:
        return self._config("model_settings", {})

    def clean_tools(self) -> Any:
        return self._config("tools", [])

    def clean_alert_response(self) -> str:
        return self.cleaned_data.get("alert_response") or self.instance.alert_response


class AgentFilterForm(forms.Form):
    """Filters are free text under select widgets: a value the user has no choice for (an
    old link, another team's slug) matches nothing rather than being silently dropped."""

    q = forms.CharField(required=False, label="Search")
    team = forms.CharField(required=False)
    owner = forms.CharField(required=False)
    status = forms.CharField(required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        teams = [("", "Any team"), *agent_team_choices(user=user)]
        owners = [("", "Any owner")] + [(u, u) for u in agent_owner_choices(user=user)]
        statuses = [("", "Any status"), *AgentStatus.choices]
        self.fields["team"].widget = forms.Select(choices=teams)
        self.fields["owner"].widget = forms.Select(choices=owners)
        self.fields["status"].widget = forms.Select(choices=statuses)

    def filters(self) -> AgentFilters:
        if not self.is_bound or not self.is_valid():
            return AgentFilters()
        data = self.cleaned_data
        return AgentFilters(**{key: data[key].strip() for key in ("q", "team", "owner", "status")})


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


class AgentHistoryForm(forms.Form):
    """What the agent's History shows (changes by default) and from where: events older
    than ``before`` (a seq), for the Older link. A bad value shows the newest changes."""

    show = forms.ChoiceField(choices=HISTORY_CHOICES, required=False, initial=CHANGES)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def query(self) -> dict[str, Any]:
        """Keyword arguments for ``audit.selectors.agent_history``."""
        if not self.is_bound or not self.is_valid():
            return {"show": CHANGES, "before": None}
        data = self.cleaned_data
        return {"show": data["show"] or CHANGES, "before": data["before"]}
