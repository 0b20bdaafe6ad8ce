"""The world the SDK's conformance suite runs against (clients/python/tests/conformance).

Written with the project's own services, on an empty, migrated database, then described
in a JSON file for the suite (OVERSIGHT_CONFORMANCE_WORLD):

    python -m tests.sdk.conformance_world --url http://127.0.0.1:8000 --out world.json
    python -m tests.sdk.conformance_world --check   # after the suite: what it left behind

- "conformance-bot" may refund any charge, as `payments.refund` (the SDK and the
  adapters) and as `mcp.payments.refund` (the MCP proxy's tool `refund` on the server
  `payments`); charge `ch_blocked` is forbidden, and a refund over 100 is held for one
  approval, which may edit the params;
- a production token and a staging token (its actions are dry runs);
- "conformance-halted", with the same grant, stopped by its own kill switch;
- "conformance-reviewer", who may decide the bot's held actions, with a personal token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ACTIONS = ("payments.refund", "mcp.payments.refund")
RESOURCES = "stripe:charge/*"
HOLD_ABOVE = 100
AGENT, HALTED_AGENT = "conformance-bot", "conformance-halted"


def build_world(url: str) -> dict[str, str]:
    """Create the world in one transaction; refuse (changing nothing) if it exists."""
    from django.db import transaction

    from oversight.agents.models import Agent
    from oversight.lib.request_id import request_id_scope

    if Agent.objects.filter(slug__in=(AGENT, HALTED_AGENT)).exists():
        raise SystemExit("The conformance world exists already: start from an empty database.")
    with transaction.atomic(), request_id_scope():
        return _build(url)


def _build(url: str) -> dict[str, str]:
    from oversight.accounts import roles
    from oversight.accounts.services import personal_token_create, team_add_member, team_create
    from oversight.agents.services import agent_access_grant, agent_create, token_create
    from oversight.audit.actors import Actor
    from oversight.killswitch.selectors import parse_target
    from oversight.killswitch.services import killswitch_engage

    actor = Actor.system("conformance_world")
    owner = _user("conformance-owner", roles.OWNER)
    reviewer = _user("conformance-reviewer", roles.REVIEWER)
    team = team_create(actor=actor, name="conformance")
    team_add_member(actor=actor, team=team, user=owner)

    def agent(slug: str, purpose: str) -> Any:
        created = agent_create(
            actor=actor,
            name=slug,
            slug=slug,
            purpose=purpose,
            owner=owner,
            team=team,
            environments=["staging", "production"],
        )
        for action in ACTIONS:
            _policy(actor, "Grant", agent=created, action=action, resource=RESOURCES)
        return created

    bot = agent(AGENT, "Refunds charges, as every integration's conformance scenarios do.")
    agent_access_grant(actor=actor, agent=bot, user=reviewer, level="reviewer")
    _policy(
        actor,
        "Rule",
        agent=bot,
        name="blocked charge",
        effect="forbid",
        resource="stripe:charge/ch_blocked",
    )
    _policy(  # after the reviewer: a hold rule needs someone who may approve it
        actor,
        "Rule",
        agent=bot,
        name=f"refunds over {HOLD_ABOVE} need a person",
        effect="hold",
        condition=f"params.amount > {HOLD_ABOVE}",
        approvals=1,
        edits_allowed=True,
        expires_in_seconds=600,
    )
    halted = agent(HALTED_AGENT, "Stopped by its kill switch.")
    killswitch_engage(
        actor=actor, target=parse_target(f"agent:{halted.slug}"), reason="conformance: halted"
    )
    return {
        "url": url,
        "agent": bot.slug,
        "token": token_create(actor=actor, agent=bot, environment="production")[1],
        "staging_token": token_create(actor=actor, agent=bot, environment="staging")[1],
        "halted_token": token_create(actor=actor, agent=halted, environment="production")[1],
        "reviewer_token": personal_token_create(user=reviewer, name="conformance")[1],
    }


def check_world() -> list[str]:
    """What the suite left that no integration may leave: an action that was let run but
    never reported, reported `succeeded` without an after-state, or still held (every
    held action was decided, so nothing should wait). The API does not show the
    after-state, so this looks at the record itself."""
    from oversight.gateway.models import Action

    actions = Action.objects.filter(agent__slug__in=(AGENT, HALTED_AGENT))
    problems = [
        f"action {a.pk} ({a.action} on {a.resource}) is {a.status}: never reported"
        for a in actions.filter(status__in=("allowed", "approved", "pending"))
    ]
    problems += [
        f"action {a.pk} ({a.action} on {a.resource}) succeeded without an after-state"
        for a in actions.filter(status="succeeded", after__isnull=True)
    ]
    return problems


def _user(username: str, role: str) -> Any:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(
        username=username, email=f"{username}@example.com", password=None
    )
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def _policy(actor: Any, model: str, **fields: Any) -> Any:
    from oversight.policy import models
    from oversight.policy.services import policy_object_create

    return policy_object_create(actor=actor, obj=getattr(models, model)(**fields))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="where the server will listen")
    parser.add_argument("--out", type=Path, help="the JSON file to write")
    parser.add_argument("--check", action="store_true", help="check what the suite left")
    args = parser.parse_args(argv)
    if not args.check and not (args.url and args.out):
        parser.error("give --url and --out, or --check")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    if args.check:
        problems = check_world()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            raise SystemExit(1)
        return
    world = build_world(args.url)
    args.out.write_text(json.dumps(world, indent=2) + "\n")
    args.out.chmod(0o600)  # it holds tokens
    print(f"conformance world for {args.url} written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
