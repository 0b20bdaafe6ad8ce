"""Create the demo organisation: users for every role, teams and ten agents. Idempotent."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from oversight.accounts import services as account_services
from oversight.accounts.models import Team
from oversight.agents import services as agent_services
from oversight.agents.models import Agent
from oversight.audit.actors import Actor
from oversight.core import demo
from oversight.lib.request_id import request_id_scope
from oversight.notifications.models import TeamChannels
from oversight.notifications.services import team_channels_update
from oversight.policy.models import Grant, Limit, Rule
from oversight.policy.services import policy_object_create
from oversight.releases.services import releases_batched


class Command(BaseCommand):
    help = "Create demo users (one per role), teams and agents. Safe to run again."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (it sets known passwords).",
        )

    @transaction.atomic
    def handle(self, *args: Any, force: bool = False, **options: Any) -> None:
        if not (settings.DEBUG or force):
            raise CommandError("seed_demo sets well-known passwords; use --force outside DEBUG.")
        actor = Actor.system("seed_demo")
        with request_id_scope():  # one id ties together everything this run records
            users = self._users()
            teams = self._teams(actor, users)
            created = self._agents(actor, users, teams)
            self._reviewers(actor, users, teams)
            self._grants(actor, users)
            self._policies(actor)  # last: a hold rule needs people who can approve it
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({created} agents created)."))
        site = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"  # bin/demo's PORT
        self.stdout.write(f"Log in at {site}/ as:")
        for username, full_name, roles, team_names in demo.USERS:
            what = ", ".join(roles + [f"team {t}" for t in team_names]) or "no role"
            password = username + demo.DEMO_PASSWORD_SUFFIX
            self.stdout.write(f"  {username:<8} {password:<20} {full_name} ({what})")
        if settings.DEV_OUTBOX:
            self.stdout.write(f"Emails Oversight sends are at {site}/dev/outbox/")

    def _users(self) -> dict[str, Any]:
        user_model = get_user_model()
        users = {}
        for username, full_name, roles, _teams in demo.USERS:
            first, last = full_name.split(" ", 1)
            user, _ = user_model.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@example.com",
                },
            )
            user.set_password(username + demo.DEMO_PASSWORD_SUFFIX)
            user.is_staff = user.is_superuser = "admin" in roles
            user.save()
            for role in roles:
                user.groups.add(Group.objects.get_or_create(name=role)[0])
            users[username] = user
        return users

    def _teams(self, actor: Actor, users: dict[str, Any]) -> dict[str, Team]:
        teams = {}
        for name, description in demo.TEAMS:
            team = Team.objects.filter(slug=name).first() or account_services.team_create(
                actor=actor, name=name, description=description
            )
            teams[name] = team
            if not TeamChannels.objects.filter(team=team).exists():
                # Email on: with no mail server set, it lands in the dev outbox.
                team_channels_update(actor=actor, team=team, email_enabled=True, webhook_url="")
        for username, _full, _roles, team_names in demo.USERS:
            for name in team_names:
                account_services.team_add_member(
                    actor=actor, team=teams[name], user=users[username]
                )
        return teams

    def _agents(self, actor: Actor, users: dict[str, Any], teams: dict[str, Team]) -> int:
        created = 0
        for slug, name, team, owner, purpose, envs, risk, interval in demo.AGENTS:
            if Agent.objects.filter(slug=slug).exists():
                continue
            agent_services.agent_create(
                actor=actor,
                slug=slug,
                name=name,
                team=teams[team],
                owner=users[owner],
                purpose=purpose,
                environments=envs,
                risk_tier=risk,
                review_interval_days=interval,
            )
            created += 1
        return created

    def _policies(self, actor: Actor) -> None:
        """Grants, rules and limits for a few agents, unless the agent already has a policy."""
        for slug, policy in demo.POLICIES.items():
            agent = Agent.objects.get(slug=slug)
            if Grant.objects.filter(agent=agent).exists():
                continue
            with releases_batched(notes="the demo's policy"):  # one release: v2
                for fields in policy["grants"]:
                    policy_object_create(actor=actor, obj=Grant(agent=agent, **fields))
                for fields in policy["rules"]:
                    policy_object_create(actor=actor, obj=Rule(agent=agent, **fields))
                for fields in policy["limits"]:
                    policy_object_create(actor=actor, obj=Limit(agent=agent, **fields))

    def _reviewers(self, actor: Actor, users: dict[str, Any], teams: dict[str, Team]) -> None:
        for team, username in demo.TEAM_REVIEWERS:
            teams[team].refresh_from_db()
            account_services.team_reviewer_add(actor=actor, team=teams[team], user=users[username])

    def _grants(self, actor: Actor, users: dict[str, Any]) -> None:
        for username, level, team in demo.GRANTS:
            for agent in Agent.objects.filter(team__slug=team):
                agent_services.agent_access_grant(
                    actor=actor, agent=agent, user=users[username], level=level
                )
