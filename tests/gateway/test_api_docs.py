"""docs/api.md stays in step with the agent API: every error code the API can answer
with is in its error table, with its status, and the table lists nothing else; every
endpoint is documented; and what it says of retired agents' tokens holds."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from oversight.agents.models import AgentToken
from oversight.gateway.api import api
from oversight.gateway.exceptions import ConflictError
from oversight.reviews.services import agent_retire
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, api_error, refund

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "oversight" / "gateway"
# The approvals API for people answers from these too (same error shape, same document).
APPROVALS_API = [ROOT / "oversight" / "approvals" / name for name in ("api.py", "services.py")]
DOCS = ROOT / "docs" / "api.md"
# error_response calls whose code is not a literal: they pass on a code found elsewhere
# (ConflictError's, and ninja's HttpError statuses in _HTTP_ERROR_CODES), both read here.
PASSED_ON = {"exc.code", "code"}


def _name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _literal(node: ast.AST | None) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


def codes_in_the_code() -> set[tuple[int, str]]:
    """(status, code) of every error the agent API's code can answer with."""
    found: set[tuple[int, str]] = set()
    default_conflict = inspect.signature(ConflictError).parameters["code"].default
    for path in [*sorted(GATEWAY.rglob("*.py")), *APPROVALS_API]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_HTTP_ERROR_CODES" for t in node.targets
            ):
                assert isinstance(node.value, ast.Dict)
                for key, value in zip(node.value.keys, node.value.values, strict=True):
                    found.add((_literal(key), _literal(value)))
            if not isinstance(node, ast.Call):
                continue
            if _name(node) == "error_response":
                status, code = (_literal(arg) for arg in node.args[:2])
                if code is None:
                    assert ast.unparse(node.args[1]) in PASSED_ON, f"{path}:{node.lineno}"
                    continue
                found.add((status, code))
            elif _name(node) == "ConflictError":
                given = node.args[1] if len(node.args) > 1 else None
                given = given or next((k.value for k in node.keywords if k.arg == "code"), None)
                code = _literal(given) if given is not None else default_conflict
                assert code, f"{path}:{node.lineno}: a ConflictError code must be a literal"
                found.add((409, code))
    return found


def codes_in_the_docs() -> set[tuple[int, str]]:
    errors = DOCS.read_text(encoding="utf-8").split("## Errors", 1)[1].split("\n## ", 1)[0]
    return {
        (int(status), code)
        for status, code in re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", errors, re.MULTILINE)
    }


def test_every_error_code_of_the_api_is_documented_and_nothing_else() -> None:
    in_code, in_docs = codes_in_the_code(), codes_in_the_docs()
    assert len(in_code) > 10  # the scan found the API's errors at all
    assert in_code - in_docs == set(), "answered by the API, missing from docs/api.md"
    assert in_docs - in_code == set(), "in docs/api.md, never answered by the API"


def test_every_endpoint_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    schema = api.get_openapi_schema()
    for path, operations in schema["paths"].items():
        documented = re.sub(r"\{[^}]+\}", "{id}", path)
        for method in operations:
            assert f"`{method.upper()} {documented}" in text, f"{method.upper()} {path}"


@pytest.mark.django_db
def test_a_retired_agent_s_token_gets_401_as_documented(
    api: AgentApi, agent: Any, prod_token: tuple[AgentToken, str]
) -> None:
    assert "Retiring an\nagent revokes its tokens" in DOCS.read_text(encoding="utf-8")
    agent_retire(actor=SYSTEM, agent=agent, reason="replaced by a new bot")
    api_error(api.post("/actions", refund()), 401, "unauthorized")
    api_error(api.get("/agent"), 401, "unauthorized")
