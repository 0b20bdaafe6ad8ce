"""What a guard asks for, and how the decorator form derives it from a call's arguments.

The rule, for `resource`, `params`, `reason` and `before` (and `after` of the result):

- a plain value is sent as it is;
- a callable is called with the decorated function's arguments, by name. The call's
  positional and keyword arguments are first bound to the function's signature (defaults
  filled in), so `f("c1")` and `f(contact_id="c1")` look the same. The callable receives
  only the names it declares, unless it takes `**kwargs`, in which case it gets them all:

      @client.guard("crm.contact.update",
                    resource=lambda contact_id: f"crm:contact/{contact_id}",
                    params=lambda fields, **_: {"fields": sorted(fields)})
      def update_contact(contact_id: str, fields: dict) -> dict: ...

Callables only make sense in the decorator form; the context-manager form has no call to
derive from and refuses them.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# JSON-like values: a decorated function's return value is reported as the after-state
# only when it is one of these (and `after=` was not given).
_JSON_TYPES = (dict, list, str, int, float, bool, type(None))


def call_arguments(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by parameter name, defaults included."""
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


@functools.lru_cache(maxsize=256)
def _accepted_names(fn: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword names `fn` accepts, or None when it takes **kwargs (all of them)."""
    parameters = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keywordable = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in parameters if p.kind in keywordable)


def _names_of(value: Callable[..., Any]) -> frozenset[str] | None:
    try:
        return _accepted_names(value)
    except TypeError:  # unhashable callable object: inspect it every time
        return _accepted_names.__wrapped__(value)


def derive(value: Any, arguments: dict[str, Any]) -> Any:
    """`value` itself, or, if callable, its result for these call arguments."""
    if not callable(value):
        return value
    accepted = _names_of(value)
    if accepted is not None:
        arguments = {name: arg for name, arg in arguments.items() if name in accepted}
    return value(**arguments)


def resource_params_of(resource: Any, params: dict[str, Any]) -> tuple[str, ...] | None:
    """The params the resource is made of, for Oversight to keep a reviewer from editing
    them: those named as an argument the resource callable takes (`charge` of
    `lambda charge: f"stripe:charge/{charge}"`; a reviewer's edit maps onto the argument of
    the same name). A callable taking **kwargs says which it uses with `argument_names`
    (the adapters' templates do); otherwise nothing is said (None), nor for a plain value."""
    if not callable(resource):
        return None
    declared = hasattr(resource, "argument_names")
    names = resource.argument_names if declared else _names_of(resource)
    if names is None:
        return None
    return tuple(key for key in params if key in names) or None


def default_after(result: Any) -> Any:
    """A decorated function's return value as the after-state, if it is JSON-like."""
    return result if isinstance(result, _JSON_TYPES) else None


@dataclass(frozen=True)
class ActionRequest:
    """One concrete request: every field is a plain value."""

    action: str
    resource: str
    params: dict[str, Any]
    reason: str = ""
    reversible: bool = False
    before: Any = None
    session_id: str = ""
    parent_id: str | None = None
    idempotency_key: str | None = None
    resource_params: tuple[str, ...] | None = None

    def ask_kwargs(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "params": self.params,
            "reason": self.reason,
            "reversible": self.reversible,
            "before": self.before,
            "session_id": self.session_id,
            "parent_id": self.parent_id,
            "idempotency_key": self.idempotency_key,
            "reports_outcome": True,  # a guard reports what happened once it has run
            "resource_params": self.resource_params,
        }


@dataclass(frozen=True)
class GuardSpec:
    """A guard's arguments as given: values, or callables of the decorated call."""

    action: str
    resource: Any
    params: Any = None
    reason: Any = ""
    reversible: bool = False
    before: Any = None
    session_id: str = ""
    parent_id: str | uuid.UUID | None = None
    timeout: float | None = None
    after: Callable[[Any], Any] | None = None
    # An approval with edited params: None runs them where the guard can (a decorated
    # function's same-named arguments), True also in a `with` block (which reads
    # `g.params`), False never (see guard.py).
    accept_edits: bool | None = None
    # Asking again with one key gets the first decision back (a run resumed later, say:
    # the framework adapters' deferred calls). None: a fresh key per guarded run.
    idempotency_key: str | None = None
    # False leaves a hold nobody decided in time pending (ApprovalTimeout is raised all
    # the same), for a caller that will come back for it with the same idempotency key.
    give_up: bool = True
    # False: an approved action is not claimed (`start`) on entry, for a caller that only
    # wants the decision and runs the action later under another guard with the same key
    # (the OpenAI Agents adapter's approval hook).
    claim: bool = True
    # True: `idempotency_key` is this run's own (made for this call, or first asked by a
    # guard with `claim=False`, which only decided), so a replayed `allowed` answer is this
    # guard's to run. Otherwise a replayed `allowed` action may have run (the caller first
    # answered may have run it and stopped before reporting): it does not run again
    # (`ActionFinished`).
    key_is_own: bool = False
    # The params the resource is made of, said by the caller (a `with` block's, say);
    # None: derived from a resource callable's arguments (resource_params_of).
    resource_params: tuple[str, ...] | None = None

    def request(self, arguments: dict[str, Any] | None = None) -> ActionRequest:
        """The concrete request; `arguments` are the decorated call's (None: a `with`)."""
        if arguments is None:
            derived = [self.resource, self.params, self.reason, self.before]
            if any(callable(v) for v in derived):
                raise TypeError(
                    "resource/params/reason/before may be callables only when the guard "
                    "decorates a function; in a `with` block pass the values."
                )
            arguments = {}
        resource = derive(self.resource, arguments)
        params = derive(self.params, arguments)
        if not isinstance(resource, str):
            raise TypeError(f"resource must be a string, not {type(resource).__name__}")
        if params is not None and not isinstance(params, dict):
            raise TypeError(f"params must be a dict, not {type(params).__name__}")
        params = params or {}
        return ActionRequest(
            action=self.action,
            resource=resource,
            params=params,
            reason=str(derive(self.reason, arguments) or ""),
            reversible=self.reversible,
            before=derive(self.before, arguments),
            session_id=self.session_id,
            parent_id=str(self.parent_id) if self.parent_id else None,
            idempotency_key=self.idempotency_key,
            resource_params=(
                tuple(self.resource_params)
                if self.resource_params is not None
                else resource_params_of(self.resource, params)
            ),
        )

    def after_state(self, result: Any) -> Any:
        return self.after(result) if self.after is not None else default_after(result)


def edited_arguments(
    spec: GuardSpec, arguments: dict[str, Any], approved: dict[str, Any]
) -> dict[str, Any] | None:
    """The decorated call's arguments changed so that they give the ``approved`` params:
    each edited param is the argument of the same name. None when that does not give
    exactly the approved params (a param computed from several arguments, say), or gives
    another resource: Oversight decided the edit on the resource asked for, so an edit of
    an argument the resource is made of (`charge` in `stripe:charge/{charge}`) would run
    on a resource nobody decided on."""
    asked = spec.request(arguments)
    changed = {key: value for key, value in approved.items() if asked.params.get(key) != value}
    if any(key not in arguments for key in changed):
        return None
    edited = spec.request({**arguments, **changed})
    if edited.params != approved or edited.resource != asked.resource:
        return None
    return changed


def rebind(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], changed: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``fn``'s call with the ``changed`` arguments, by name, positional or not."""
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    bound.arguments.update(changed)
    return bound.args, bound.kwargs
