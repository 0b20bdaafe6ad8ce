"""The served OpenAPI document says what the API accepts: what one refuses, so does the other.

Checked with a JSON Schema validator (jsonschema-rs, which schemathesis brings) against the
document, and with the API itself. Lone surrogates and nesting deeper than the limit are
refused too and only described in words: JSON Schema has no keyword for them.
"""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from oversight.gateway.api import api
from oversight.gateway.constants import MAX_BODY_BYTES
from oversight.gateway.models import Action
from oversight.gateway.schemas import ActionIn, ResultIn
from tests.gateway_live.conftest import LiveAgent
from tests.gateway_live.helpers import refund


def validator(document: dict[str, Any], name: str) -> Any:
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    )


def accepts(schema: type[ActionIn | ResultIn], body: dict[str, Any]) -> bool:
    try:
        schema.model_validate(body)
    except ValidationError:
        return False
    return True


_DOCUMENT = api.get_openapi_schema()
_ACTION_IN = validator(_DOCUMENT, "ActionIn")
_RESULT_IN = validator(_DOCUMENT, "ResultIn")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
nul_text = st.builds(lambda a, b: f"{a}\x00{b}", st.text(max_size=5), st.text(max_size=5))


@given(action=st.text(max_size=30) | st.from_regex(r"[a-z0-9_.-]{1,30}", fullmatch=True))
def test_action_names(action: str) -> None:
    body = {"action": action, "resource": "stripe:charge/ch_1"}
    assert _ACTION_IN.is_valid(body) == accepts(ActionIn, body)


@given(resource=st.text(max_size=30))
def test_resources(resource: str) -> None:
    body = {"action": "payments.refund", "resource": resource}
    assert _ACTION_IN.is_valid(body) == accepts(ActionIn, body)


@given(params=st.dictionaries(st.text(max_size=5) | nul_text, json_values | nul_text, max_size=3))
def test_params(params: dict[str, Any]) -> None:
    body = {"action": "payments.refund", "resource": "stripe:charge/ch_1", "params": params}
    assert _ACTION_IN.is_valid(body) == accepts(ActionIn, body)


@given(after=json_values | nul_text | st.lists(nul_text, max_size=2), error=st.text(max_size=5))
def test_result_reports(after: Any, error: str) -> None:
    body = {"outcome": "succeeded", "after": after, "error": error}
    assert _RESULT_IN.is_valid(body) == accepts(ResultIn, body)


def test_the_body_limit_is_stated() -> None:
    for name in ("ActionIn", "ResultIn"):
        assert f"{MAX_BODY_BYTES} bytes" in _DOCUMENT["components"]["schemas"][name]["description"]


@pytest.mark.postgres
def test_a_nul_in_a_result_report_is_refused_by_the_served_document_and_the_api(
    live_agent: LiveAgent,
) -> None:
    document = httpx.get(f"{live_agent.url}/api/v1/openapi.json").json()
    result_in = validator(document, "ResultIn")
    decided = httpx.post(
        f"{live_agent.url}/api/v1/actions", json=refund(1), headers=live_agent.headers
    )
    assert decided.json()["status"] == "allowed"
    url = f"{live_agent.url}/api/v1/actions/{decided.json()['id']}/result"

    refused = [
        {"outcome": "succeeded", "after": {"note": "a\x00b"}},
        {"outcome": "succeeded", "after": [{"key\x00": 1}]},
        {"outcome": "failed", "error": "broke\x00"},
        {"outcome": "succeeded", "params": {"amount": "\x00"}},
    ]
    for body in refused:
        assert not result_in.is_valid(body), body
        answer = httpx.post(url, json=body, headers=live_agent.headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "validation_error"

    body = {"outcome": "succeeded", "after": {"note": "refunded", "lines": [{"id": 1}]}}
    assert result_in.is_valid(body)
    answer = httpx.post(url, json=body, headers=live_agent.headers)
    assert answer.status_code == 200, answer.text
    assert Action.objects.get().after == body["after"]
