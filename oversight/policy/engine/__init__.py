"""Oversight's policy engine: plain data in, a decision with its reasons out.

Pure Python: nothing here imports Django or the rest of ``oversight``. Compile a policy
version once with `compile_policy` and call `CompiledPolicy.decide` for each request.
"""

from .compiler import compile_policy
from .conditions import ConditionError, check_condition
from .patterns import check_pattern, is_action_name, is_resource
from .policy import CompiledPolicy
from .types import (
    Decision,
    Effect,
    GrantSpec,
    LimitSpec,
    Outcome,
    Reason,
    ReasonKind,
    Request,
    RuleSpec,
)

__all__ = [
    "CompiledPolicy",
    "ConditionError",
    "Decision",
    "Effect",
    "GrantSpec",
    "LimitSpec",
    "Outcome",
    "Reason",
    "ReasonKind",
    "Request",
    "RuleSpec",
    "check_condition",
    "check_pattern",
    "compile_policy",
    "is_action_name",
    "is_resource",
]
