"""The approval queue page, voting in place, and an action's own page."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.accounts import roles
from oversight.agents.models import AgentToken
from oversight.agents.services import agent_access_grant
from oversight.approvals.services import approval_vote
from oversight.gateway.models import Action
from tests.conftest import SYSTEM, make_user
from tests.gateway.helpers import decide, grant_refunds, hold_large_refunds, refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(agent: Any, prod_token: AgentToken) -> Action:
    grant_refunds(agent)
    hold_large_refunds(agent)
    return decide(
        prod_token,
        {**refund(900), "reason": "Customer was charged twice", "before": {"refunded": 0}},
    )


def _seen(action: Action) -> str:
    """The request hash a card or page shows now, as its forms send it back."""
    return Action.objects.values_list("request_hash", flat=True).get(pk=action.pk)


def _vote(client: Client, user: Any, action: Action, vote: str, comment: str = "") -> Any:
    client.force_login(user)
    url = reverse("approvals:vote", args=[action.pk])
    body = {"vote": vote, "comment": comment, "request_hash": _seen(action)}
    return client.post(url, body, HTTP_HX_REQUEST="true")


def test_the_queue_shows_everything_needed_to_decide(
    client: Client, rita: Any, held: Action
) -> None:
    client.force_login(rita)
    page = client.get(reverse("approvals:queue")).content.decode()
    for text in (
        f'id="queue-{held.pk}"',
        "Refund bot",
        "Alice",
        "payments",
        "High risk",
        "payments.refund",
        "stripe:charge/ch_1",
        "&quot;amount&quot;: 900",
        "&quot;refunded&quot;: 0",
        "Customer was charged twice",
        "large refunds",
        "params.amount &gt; 500",
        "data-expires-at",
        "Votes 0 of 1",
    ):
        assert text in page, text


def test_a_list_row_that_cannot_show_every_param_offers_no_one_click_approve(
    client: Client, rita: Any, held: Action, prod_token: AgentToken
) -> None:
    """The compact list showed twelve params and "and 2 more" (and cut values at 80
    characters) beside a one-click Approve: what was approved was partly unseen. A long
    value is now shown whole; a row that still cannot show them all is decided on the
    action's page."""
    body = refund(950, charges=("ch_many",))
    many = decide(
        prod_token, {**body, "params": {**body["params"], **{f"k{i:02}": i for i in range(13)}}}
    )
    long_note = "n" * 200
    noted = decide(
        prod_token,
        {
            **refund(960, charges=("ch_note",)),
            "params": {"amount": 960, "charges": ["ch_note"], "note": long_note},
        },
    )
    assert (many.status, noted.status) == ("pending", "pending")
    client.force_login(rita)
    page = client.get(reverse("approvals:queue"), {"view": "list"}).content.decode()

    def row(action: Action) -> str:
        start = page.index(f'id="queue-{action.pk}"')
        return page[start : page.index("</li>", start)]

    assert "too long to approve from the list" in row(many)
    assert 'value="approve"' not in row(many) and "Read and decide…" in row(many)
    assert long_note in row(noted) and 'value="approve"' in row(noted)
    assert 'value="approve"' in row(held)


@pytest.mark.parametrize("who", ["teammate", "outsider", "auditor"])
def test_people_who_may_not_approve_see_an_empty_queue(
    client: Client, request: pytest.FixtureRequest, held: Action, who: str
) -> None:
    client.force_login(request.getfixturevalue(who))
    assert f"queue-{held.pk}" not in client.get(reverse("approvals:queue")).content.decode()


def test_approving_in_place_answers_with_the_updated_item(
    client: Client, rita: Any, held: Action
) -> None:
    response = _vote(client, rita, held, "approve")
    assert response.status_code == 200
    assert "Approved" in response.content.decode()
    held.refresh_from_db()
    assert held.status == "approved"
    # Said above the queue too, where it stays once the decided card has left.
    page = reverse("approvals:action", args=[held.pk])
    assert (
        '<p id="vote-status" class="ok" role="status" hx-swap-oob="true" data-oob-if-present>'
        f"You approved {held.action} on {held.resource} (Refund bot)."
        f' <a href="{page}">Full story</a></p>'
    ) in response.content.decode()
    assert 'id="vote-status"' in client.get(reverse("approvals:queue")).content.decode()


def test_a_refused_vote_says_nothing_above_the_queue(
    client: Client, rita: Any, held: Action
) -> None:
    assert "vote-status" not in _vote(client, rita, held, "deny").content.decode()


def test_a_deny_without_a_comment_is_refused_in_place(
    client: Client, rita: Any, held: Action
) -> None:
    response = _vote(client, rita, held, "deny")
    assert response.status_code == 422
    assert "Say why you deny it." in response.content.decode()
    held.refresh_from_db()
    assert held.status == "pending"


def test_the_late_reviewer_is_told_what_happened(
    client: Client, rita: Any, rob: Any, held: Action
) -> None:
    _vote(client, rita, held, "deny", "not this customer")
    response = _vote(client, rob, held, "approve")
    assert response.status_code == 409
    assert "already decided; its status now: denied by a reviewer" in response.content.decode()
    # Above the queue too: the live queue had taken rob's card away before the answer
    # came, so the answer's card had nowhere to go and he was told nothing.
    status = response.content.decode().split('<p id="vote-status"')[1]
    assert status.startswith(' class="error" role="status" hx-swap-oob="true"')
    assert "Your vote was not counted. payments.refund on" in status
    assert "already decided; its status now: denied by a reviewer" in status


@pytest.mark.parametrize(
    ("vote", "comment", "said"),
    [("deny", "not this customer", "denied"), ("approve", "", "approved")],
)
def test_the_actions_page_says_who_voted_what(
    client: Client, rita: Any, held: Action, vote: str, comment: str, said: str
) -> None:
    _vote(client, rita, held, vote, comment)
    page = client.get(reverse("approvals:action", args=[held.pk])).content.decode()
    assert f"<strong>rita</strong> {said}" in page


def test_a_denied_actions_page_says_who_could_have_approved(
    client: Client, rita: Any, held: Action
) -> None:
    _vote(client, rita, held, "deny", "not this customer")
    page = client.get(reverse("approvals:action", args=[held.pk])).content.decode()
    assert "<strong>Who could approve:</strong>" in page and "Who may approve" not in page
    assert "No votes yet" not in page


def test_an_outsider_cannot_vote_or_see_the_action(
    client: Client, outsider: Any, held: Action
) -> None:
    assert _vote(client, outsider, held, "approve").status_code == 404
    assert client.get(reverse("approvals:action", args=[held.pk])).status_code == 404
    held.refresh_from_db()
    assert held.status == "pending"


def test_a_teammate_may_look_but_not_vote(client: Client, teammate: Any, held: Action) -> None:
    client.force_login(teammate)
    page = client.get(reverse("approvals:action", args=[held.pk])).content.decode()
    assert "action.decided" in page and 'name="vote"' not in page
    response = _vote(client, teammate, held, "approve")
    assert response.status_code == 403
    assert "may not decide" in response.content.decode()


def test_voting_needs_csrf(rita: Any, held: Action) -> None:
    client = Client(enforce_csrf_checks=True)
    assert _vote(client, rita, held, "approve").status_code == 403


def test_the_action_page_tells_the_whole_story(client: Client, rita: Any, held: Action) -> None:
    _vote(client, rita, held, "approve")
    page = client.get(reverse("approvals:action", args=[held.pk])).content.decode()
    assert "action.decided" in page and "action.voted" in page
    assert "Waiting for approval → Approved" in page


def test_the_action_page_names_the_policy_revision_it_was_decided_under(
    client: Client, rita: Any, held: Action
) -> None:
    client.force_login(rita)
    page = client.get(reverse("approvals:action", args=[held.pk])).content.decode()
    assert f">v{held.release_version}</a>" in page
    assert f'versions the whole agent">policy revision {held.policy_version}</span>' in page


def _vote_on_its_page(client: Client, user: Any, action: Action, vote: str, seen: str = "") -> Any:
    """A vote from the action's own page (htmx says which page it came from)."""
    page = reverse("approvals:action", args=[action.pk])
    client.force_login(user)
    url = reverse("approvals:vote", args=[action.pk])
    on_page = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": f"http://testserver{page}"}
    return client.post(url, {"vote": vote, "request_hash": seen or _seen(action)}, **on_page)


def test_a_vote_on_the_actions_own_page_shows_the_page_anew_saying_what_it_did(
    client: Client, rita: Any, held: Action
) -> None:
    response = _vote_on_its_page(client, rita, held, "approve")
    assert (response.status_code, response["HX-Refresh"]) == (200, "true")
    shown = client.get(reverse("approvals:action", args=[held.pk])).content.decode()
    assert "You approved this action." in shown
    assert "Waiting for approval → Approved" in shown


def test_a_refused_vote_on_the_actions_own_page_is_explained_in_place(
    client: Client, rita: Any, held: Action
) -> None:
    response = _vote_on_its_page(client, rita, held, "deny")
    assert response.status_code == 422 and "HX-Refresh" not in response
    assert "Say why you deny it." in response.content.decode()


def test_the_overview_counts_what_waits_and_lists_recent_actions(
    client: Client, rita: Any, held: Action
) -> None:
    client.force_login(rita)
    page = client.get(reverse("home")).content.decode()
    assert '<span class="waiting-count">1</span> waiting for your approval' in page
    assert f'id="action-{held.pk}"' in page and 'id="action-feed"' in page


def test_an_admins_overview_counts_what_is_held_not_what_waits_for_her(
    client: Client, admin_user: Any, held: Action
) -> None:
    """An admin is shown every held action, but decides one only once it is escalated
    to admins: the count does not say they all wait for her."""
    client.force_login(admin_user)
    page = client.get(reverse("home")).content.decode()
    assert '<span class="waiting-count">1</span> held for approval' in page
    assert "waiting for your approval" not in page


def _edit(client: Client, user: Any, action: Action, params: str) -> Any:
    client.force_login(user)
    url = reverse("approvals:vote", args=[action.pk])
    body = {"vote": "approve", "params": params, "comment": "less", "request_hash": _seen(action)}
    return client.post(url, body, HTTP_HX_REQUEST="true")


def test_the_card_offers_edit_and_approve(client: Client, rita: Any, held: Action) -> None:
    client.force_login(rita)
    page = client.get(reverse("approvals:queue")).content.decode()
    assert "Edit and approve" in page and 'name="params"' in page


def test_edit_and_approve_in_place(client: Client, rita: Any, held: Action) -> None:
    response = _edit(client, rita, held, '{"amount": 400, "charges": ["ch_1"]}')
    assert response.status_code == 200
    action = Action.objects.get(pk=held.pk)
    assert (action.status, action.params["amount"]) == ("approved", 400)
    assert "Params as edited by a reviewer" in response.content.decode()


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("{not json", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"amount": 400}', "keep the keys charges"),
    ],
)
def test_a_bad_edit_is_explained_and_keeps_what_was_typed(
    client: Client, rita: Any, held: Action, typed: str, says: str
) -> None:
    response = _edit(client, rita, held, typed)
    assert response.status_code == 422
    page = response.content.decode()
    assert says in page and '<details class="edit-approve" open>' in page
    assert f">{html.escape(typed)}</textarea>" in page  # what was typed, params and note
    assert f'id="edit-comment-{held.pk}" type="text" name="comment" value="less"' in page
    assert Action.objects.get(pk=held.pk).status == "pending"
    assert not held.votes.exists()


@pytest.mark.parametrize("where", ["card", "action page", "without htmx"])
def test_a_refused_edit_keeps_the_params_and_the_note_typed(
    client: Client, agent: Any, prod_token: AgentToken, rita: Any, where: str
) -> None:
    """Refused because the resource is made of the param changed: the reviewer finds her
    params and her note to the agent as she typed them, on the queue's card, on the
    action's own page and without JavaScript, to correct rather than type again."""
    grant_refunds(agent)
    hold_large_refunds(agent)
    held = decide(prod_token, refund(900, resource_params=["charges"]))
    typed = '{"amount": 400, "charges": ["ch_2"]}'
    note = "refund 400 on the other charge & say why"
    body = {"vote": "approve", "params": typed, "comment": note, "request_hash": _seen(held)}
    headers = {
        "card": {"HX-Request": "true", "HX-Current-URL": "http://testserver/approvals/"},
        "action page": {
            "HX-Request": "true",
            "HX-Current-URL": f"http://testserver/actions/{held.pk}/",
        },
        "without htmx": {},
    }[where]
    client.force_login(rita)
    response = client.post(reverse("approvals:vote", args=[held.pk]), body, headers=headers)
    assert response.status_code == 422
    page = response.content.decode()
    assert "made of params.charges, which cannot be edited" in html.unescape(page)
    assert '<details class="edit-approve" open>' in page
    assert f">{html.escape(typed)}</textarea>" in page
    assert f'name="comment" value="{html.escape(note)}"' in page
    assert Action.objects.get(pk=held.pk).status == "pending" and not held.votes.exists()


def test_a_refused_vote_keeps_its_comment(client: Client, teammate: Any, held: Action) -> None:
    """A teammate may see the action but not decide it: refused, the comment she typed
    stays in the vote form."""
    response = _vote(client, teammate, held, "approve", comment="ok by me")
    assert response.status_code == 403
    assert 'name="comment" value="ok by me"' in response.content.decode()
    assert not held.votes.exists()


# --- what the voter saw ------------------------------------------------------------------


def _hash_fields(page: str, action: Action) -> int:
    return page.count(f'<input type="hidden" name="request_hash" value="{action.request_hash}">')


def test_every_vote_form_says_which_params_it_shows(
    client: Client, rita: Any, held: Action
) -> None:
    client.force_login(rita)
    cards = client.get(reverse("approvals:queue")).content.decode()
    assert _hash_fields(cards, held) == 2  # the card's Approve and Deny, and its editor
    rows = client.get(reverse("approvals:queue") + "?view=list").content.decode()
    assert _hash_fields(rows, held) == 1
    page = client.get(reverse("approvals:action", args=[held.pk])).content.decode()
    assert _hash_fields(page, held) == 2


@pytest.fixture
def held_for_two(agent: Any, prod_token: AgentToken, rita: Any, rob: Any) -> Action:
    grant_refunds(agent)
    hold_large_refunds(agent, approvals=2)
    return decide(prod_token, refund(900))


def _edited_by_rob(held: Action, rob: Any) -> Action:
    edited = {"amount": 4900, "charges": ["ch_1"]}
    return approval_vote(
        user=rob, action_id=held.pk, vote="approve", params=edited, seen=held.request_hash
    )


def test_an_approval_from_a_card_loaded_before_an_edit_is_refused_and_shows_the_edit(
    client: Client, rita: Any, rob: Any, held_for_two: Action
) -> None:
    client.force_login(rita)
    assert _hash_fields(client.get(reverse("approvals:queue")).content.decode(), held_for_two)
    edited = _edited_by_rob(held_for_two, rob)

    url = reverse("approvals:vote", args=[held_for_two.pk])
    stale = {"vote": "approve", "request_hash": held_for_two.request_hash}
    response = client.post(url, stale, HTTP_HX_REQUEST="true")

    assert response.status_code == 409
    card = html.unescape(response.content.decode())
    assert "This action was edited since you loaded it" in card
    assert '"amount": 4900' in card.split("Params as edited by a reviewer", 1)[1]
    assert _hash_fields(card, edited) == 2  # what she approves next is what she sees now
    assert Action.objects.get(pk=held_for_two.pk).status == "pending"
    assert not held_for_two.votes.filter(voter=rita).exists()


def test_an_approval_from_an_actions_page_loaded_before_an_edit_shows_the_page_anew(
    client: Client, rita: Any, rob: Any, held_for_two: Action
) -> None:
    _edited_by_rob(held_for_two, rob)
    response = _vote_on_its_page(
        client, rita, held_for_two, "approve", seen=held_for_two.request_hash
    )
    assert (response.status_code, response["HX-Refresh"]) == (200, "true")
    page = html.unescape(
        client.get(reverse("approvals:action", args=[held_for_two.pk])).content.decode()
    )
    assert "This action was edited since you loaded it" in page
    assert "Params as edited by a reviewer" in page and '"amount": 4900' in page
    assert not held_for_two.votes.filter(voter=rita).exists()


def test_an_approval_from_a_form_without_the_hash_is_refused(
    client: Client, rita: Any, held: Action
) -> None:
    client.force_login(rita)
    url = reverse("approvals:vote", args=[held.pk])
    response = client.post(url, {"vote": "approve"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "which version of the action" in response.content.decode()
    assert Action.objects.get(pk=held.pk).status == "pending"


def test_every_vote_form_posts_with_its_csrf_token_without_javascript(
    client: Client, rita: Any, held: Action
) -> None:
    """Without JavaScript a form is sent as its own method and action say: a vote form
    that only had hx-post sent a GET to the page it was on, with the comment in the URL."""
    client.force_login(rita)
    vote_url = reverse("approvals:vote", args=[held.pk])
    for address in (
        reverse("approvals:queue"),
        reverse("approvals:queue") + "?view=list",
        reverse("approvals:action", args=[held.pk]),
    ):
        page = client.get(address).content.decode()
        forms = [f for f in page.split("<form")[1:] if f'hx-post="{vote_url}"' in f.split(">")[0]]
        assert forms, address
        for form in forms:
            tag, body = form.split(">", 1)
            assert f'method="post" action="{vote_url}"' in tag, (address, tag)
            assert 'name="csrfmiddlewaretoken"' in body.split("</form>")[0], (address, tag)


def test_a_vote_without_htmx_is_taken_and_the_action_s_page_says_so(
    rita: Any, held: Action
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(rita)
    page = client.get(reverse("approvals:queue"))
    token = page.context["csrf_token"]
    url = reverse("approvals:vote", args=[held.pk])
    body = {"csrfmiddlewaretoken": str(token), "request_hash": held.request_hash}
    response = client.post(url, {**body, "vote": "deny", "comment": "not this customer"})
    assert response.status_code == 302
    assert response["Location"] == reverse("approvals:action", args=[held.pk])
    assert "not this customer" not in response["Location"]
    assert Action.objects.get(pk=held.pk).status == "rejected"
    shown = client.get(response["Location"]).content.decode()
    assert "You denied this action." in shown


def test_a_reviewer_who_voted_is_shown_that_it_waits_for_others_without_buttons(
    client: Client, rita: Any, rob: Any, held_for_two: Action
) -> None:
    response = _vote(client, rob, held_for_two, "approve")

    assert response.status_code == 200
    card = response.content.decode()
    assert f'id="voted-{held_for_two.pk}"' in card  # not #queue-…: live updates skip it
    assert "You approved this (1 of 2); waiting for another reviewer." in card
    assert 'name="vote"' not in card
    page = client.get(reverse("approvals:action", args=[held_for_two.pk])).content.decode()
    assert "You approved this (1 of 2); waiting for another reviewer." in page
    assert 'name="vote"' not in page


def test_a_vote_from_a_second_tab_answers_that_it_waits_for_others(
    client: Client, rita: Any, rob: Any, held_for_two: Action
) -> None:
    _vote(client, rob, held_for_two, "approve")
    response = _vote(client, rob, held_for_two, "approve")
    assert response.status_code == 409
    assert "waiting for another reviewer" in response.content.decode()
    assert held_for_two.votes.filter(voter=rob).count() == 1


def test_what_a_reviewer_voted_on_leaves_her_queue_not_the_others(
    client: Client, rita: Any, rob: Any, held_for_two: Action
) -> None:
    _vote(client, rob, held_for_two, "approve")
    for view in ("", "?view=list"):
        queue = client.get(reverse("approvals:queue") + view).content.decode()
        assert f"queue-{held_for_two.pk}" not in queue
    overview = client.get(reverse("home")).content.decode()
    assert '<span class="waiting-count">0</span> waiting for your approval' in overview
    client.force_login(rita)
    queue = client.get(reverse("approvals:queue")).content.decode()
    assert f'id="queue-{held_for_two.pk}"' in queue


def test_an_edit_that_supersedes_her_approval_brings_it_back_to_her_queue(
    client: Client, rita: Any, rob: Any, held_for_two: Action
) -> None:
    _vote(client, rob, held_for_two, "approve")
    edited = {"amount": 4900, "charges": ["ch_1"]}
    approval_vote(
        user=rita,
        action_id=held_for_two.pk,
        vote="approve",
        params=edited,
        seen=_seen(held_for_two),
    )
    client.force_login(rob)
    assert (
        f'id="queue-{held_for_two.pk}"' in client.get(reverse("approvals:queue")).content.decode()
    )


def test_a_compact_row_shows_what_is_asked_before_its_approve(
    client: Client, rita: Any, held: Action
) -> None:
    client.force_login(rita)
    rows = client.get(reverse("approvals:queue") + "?view=list").content.decode()
    row = rows[rows.index(f'id="queue-{held.pk}"') :]
    shown = row[row.index('class="queue-row-params') : row.index("Approve")]
    assert "<span>amount: 900</span>" in shown, shown


def test_the_story_tells_a_vote_that_left_the_action_waiting(
    client: Client, rita: Any, rob: Any, held_for_two: Action
) -> None:
    approval_vote(user=rita, action_id=held_for_two.pk, vote="approve", comment="fine by me")
    client.force_login(rob)
    page = client.get(reverse("approvals:action", args=[held_for_two.pk])).content.decode()
    assert "Voted approve (1 approval so far); still waiting for approval: “fine by me”" in page
    assert "Waiting for approval → Waiting for approval" not in page


def test_a_voted_card_read_again_counts_the_votes_given_since(
    client: Client,
    agent: Any,
    prod_token: AgentToken,
    rita: Any,
    rob: Any,
    django_user_model: Any,
    teammate: Any,
    outsider: Any,
) -> None:
    """What a card showing a vote re-reads when its action changes (static/js/oversight.js):
    the same vote with the count now, the card for one who may vote, nothing once it is
    decided or for someone who may not decide it."""
    ruth = make_user(django_user_model, "ruth", roles.REVIEWER)
    agent_access_grant(actor=SYSTEM, agent=agent, user=ruth, level="reviewer")
    agent_access_grant(actor=SYSTEM, agent=agent, user=teammate, level="viewer")
    grant_refunds(agent)
    hold_large_refunds(agent, approvals=3)
    held = decide(prod_token, refund(900))
    url = reverse("approvals:queue_item", args=[held.pk])
    _vote(client, rob, held, "approve")
    _vote(client, rita, held, "approve")

    client.force_login(rob)
    for view, element in (("", "<article"), ("?view=list", "<li")):
        card = client.get(url + view).content.decode()
        assert card.lstrip().startswith(element) and f'id="voted-{held.pk}"' in card
        assert "You approved this (2 of 3); waiting for another reviewer." in card
    client.force_login(ruth)
    assert 'name="vote"' in client.get(url).content.decode()
    client.force_login(teammate)  # may view it, not decide it
    assert client.get(url).content == b""
    client.force_login(outsider)
    assert client.get(url).status_code == 404

    _vote(client, ruth, held, "approve")
    client.force_login(rob)
    assert client.get(url).content == b""  # approved: it has left the queue


def test_a_comment_longer_than_the_api_takes_is_refused_in_the_browser_too(
    client: Client, rita: Any, held: Action
) -> None:
    """The queue took a 2,500-character deny comment the API refuses (422 at 2,000)."""
    from oversight.approvals.models import MAX_COMMENT

    response = _vote(client, rita, held, "deny", "y" * (MAX_COMMENT + 500))
    assert response.status_code == 422
    assert "Keep it to 2,000 characters (this has 2,500)." in response.content.decode()
    held.refresh_from_db()
    assert held.status == "pending"
    page = client.get(reverse("approvals:queue")).content.decode()
    assert f'value="" maxlength="{MAX_COMMENT}" placeholder="Comment (required to deny)"' in page
