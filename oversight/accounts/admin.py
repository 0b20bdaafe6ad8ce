from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from oversight.accounts import services
from oversight.accounts.models import Team
from oversight.audit.actors import Actor


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    """Saves go through the services: the team gets its group and the change is audited."""

    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    fields = ("name", "description", *services.REVIEW_SETTINGS)

    def save_model(self, request: HttpRequest, obj: Team, form: Any, change: bool) -> None:
        actor = Actor.for_user(request.user)
        data = dict(form.cleaned_data)
        settings = {field: data.pop(field) for field in services.REVIEW_SETTINGS}
        if change:
            saved = services.team_update(actor=actor, team=obj, **data)
        else:
            saved = services.team_create(actor=actor, **data)
        obj.pk = saved.pk
        services.team_review_settings_update(actor=actor, team=saved, **settings)


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    """People's roles and teams are groups, given here: each change of a person's groups
    or standing is audited, by whom, and open pages re-read what that person may see
    (services.user_access_changed)."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # the groups are saved here
        actor = Actor.for_user(request.user)
        if not change:  # a person added here gets their groups on the change form that follows
            services.user_created(actor=actor, user=form.instance)
            return
        services.user_access_changed(
            actor=actor, user=form.instance, before=services.user_access_as_shown(form.initial)
        )
