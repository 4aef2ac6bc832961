"""A small IAM policy evaluator for exactly the constructs keyrot's policies use, nothing more.

Supported, with AWS's semantics:

- `Effect` Allow / Deny; explicit deny wins over any allow, no allow means an implicit deny;
- `Action` and `NotAction` with `*` / `?` wildcards (case-insensitive); `Resource` and `NotResource` with wildcards,
  matched per ARN component (partition, service, region, account, then the rest, where `*` may span `/` and `:`);
  an SSM parameter's version or label selector (`<name>:3`) is not part of the ARN IAM checks (`iam_resource`);
- `Principal` in resource policies: `"*"`, `{"AWS": <role ARN | account id | account root | "*">}`,
  `{"Service": ...}`; a grant to an account (id or `:root`) only delegates to that account's identity policies;
- `Condition` operators `StringEquals`, `StringNotEquals`, `StringLike`, `ArnEquals`, `ArnLike`, `ArnNotLike`,
  `Bool`, each also with `IfExists`; several operators, several keys: all must hold; several values for a key: any
  may match; a key absent from the request fails the test unless the operator is negated (`...Not...`) or ends in
  `IfExists`;
- the set operators `ForAnyValue:` and `ForAllValues:` over a multivalued request key (such as `aws:TagKeys`): a
  request value satisfies the operator when it matches one of the condition's values (for a negated operator, none
  of them); `ForAnyValue` holds when some request value satisfies it (never for an absent or empty key),
  `ForAllValues` when every one does (always for an absent or empty key);
- combining identity and resource policies: in the same account a grant from either suffices; across accounts both
  must grant; an explicit deny in either blocks. A KMS key policy is mandatory: same-account callers need the key
  policy to grant them directly, or to grant their account (root) and their identity policy to allow.

Anything else (NotPrincipal, a multivalued key under a plain operator, other operators, Federated principals) raises
UnsupportedPolicyError rather than being guessed. Not modelled: SCPs, permission boundaries, session policies,
VPC endpoint policies, grants; the tests that use this say so where it matters.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Policy = Mapping[str, Any]
Statement = Mapping[str, Any]

_STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition", "Principal"}
)
_ACCOUNT = re.compile(r"^\d{12}$")


class UnsupportedPolicyError(ValueError):
    """The policy uses a construct this evaluator does not implement."""


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Principal:
    """Who calls: an IAM role (or user) ARN, or an AWS service principal such as `events.amazonaws.com`."""

    arn: str = ""
    service: str = ""

    @property
    def account(self) -> str:
        return arn_account(self.arn) if self.arn else ""

    def default_context(self, action: str) -> dict[str, Any]:
        if self.service:
            return {"aws:PrincipalIsAWSService": True, "aws:PrincipalServiceName": self.service}
        if not self.arn:
            return {}
        context: dict[str, Any] = {
            "aws:PrincipalArn": self.arn,
            "aws:PrincipalAccount": self.account,
            "aws:PrincipalIsAWSService": False,
        }
        if action.lower().startswith("kms:"):
            context["kms:CallerAccount"] = self.account
        return context


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    decision: Decision
    because: tuple[str, ...] = ()  # the statements that decided, as "<policy>/<Sid or index>"

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


# --- matching ----------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _wildcard(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE)


def wildcard_match(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """`*` matches any run of characters (also none), `?` exactly one."""
    return _wildcard(pattern, case_sensitive).match(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """Action names are case-insensitive; `*` alone matches every action of every service."""
    return wildcard_match(pattern, action, case_sensitive=False)


def arn_matches(pattern: str, arn: str) -> bool:
    """ARN matching as in the Resource element and ArnLike: each of the six components on its own, with wildcards."""
    if pattern == "*":
        return True
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return False
    return all(wildcard_match(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


def arn_account(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 else ""


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


# --- conditions --------------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


_OPERATORS: dict[str, tuple[Any, bool]] = {
    # name -> (value matches pattern, negated)
    "StringEquals": (lambda pattern, value: pattern == value, False),
    "StringNotEquals": (lambda pattern, value: pattern == value, True),
    "StringLike": (lambda pattern, value: wildcard_match(pattern, value), False),
    "ArnEquals": (arn_matches, False),
    "ArnLike": (arn_matches, False),
    "ArnNotLike": (arn_matches, True),
    "Bool": (lambda pattern, value: pattern.lower() == value.lower(), False),
}


def condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any]) -> bool:
    """Every operator block, and every key in it, must hold (AND); any listed value may match (OR)."""
    lowered = {key.lower(): value for key, value in context.items()}  # condition keys are case-insensitive
    for operator, tests in condition.items():
        if ":" in operator:
            if not _set_condition_holds(operator, tests, lowered):
                return False
            continue
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        if base not in _OPERATORS:
            raise UnsupportedPolicyError(f"condition operator {operator!r} is not supported")
        matches, negated = _OPERATORS[base]
        for key, expected in tests.items():
            if key.lower() not in lowered:
                if if_exists or negated:
                    continue
                return False
            value = lowered[key.lower()]
            if isinstance(value, list | tuple):
                raise UnsupportedPolicyError(f"multivalued context key {key!r} is not supported")
            hit = any(matches(_text(pattern), _text(value)) for pattern in _as_list(expected))
            if hit == negated:
                return False
    return True


_SET_OPERATORS = ("ForAnyValue", "ForAllValues")


def _set_condition_holds(operator: str, tests: Mapping[str, Any], lowered: Mapping[str, Any]) -> bool:
    """`ForAnyValue:<op>` / `ForAllValues:<op>` over each key's request values (every key must hold)."""
    qualifier, _, base = operator.partition(":")
    if qualifier not in _SET_OPERATORS or base.endswith("IfExists") or base not in _OPERATORS:
        raise UnsupportedPolicyError(f"set operator {operator!r} is not supported")
    matches, negated = _OPERATORS[base]
    for key, expected in tests.items():
        values = [_text(v) for v in _as_list(lowered.get(key.lower(), []))]
        patterns = [_text(p) for p in _as_list(expected)]

        satisfied = [any(matches(pattern, value) for pattern in patterns) != negated for value in values]
        holds = any(satisfied) if qualifier == "ForAnyValue" else all(satisfied)
        if not holds:
            return False
    return True


# --- statements --------------------------------------------------------------------------------------------------


def _check_statement(statement: Statement) -> None:
    unknown = set(statement) - _STATEMENT_KEYS
    if unknown:
        raise UnsupportedPolicyError(f"statement element(s) {sorted(unknown)} are not supported")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise UnsupportedPolicyError(f"Effect must be Allow or Deny, got {statement.get('Effect')!r}")
    if ("Action" in statement) == ("NotAction" in statement):
        raise UnsupportedPolicyError("a statement needs exactly one of Action and NotAction")
    if ("Resource" in statement) == ("NotResource" in statement):
        raise UnsupportedPolicyError("a statement needs exactly one of Resource and NotResource")


def _action_applies(statement: Statement, action: str) -> bool:
    if "Action" in statement:
        return any(action_matches(pattern, action) for pattern in _as_list(statement["Action"]))
    return not any(action_matches(pattern, action) for pattern in _as_list(statement["NotAction"]))


def iam_resource(resource: str) -> str:
    """The ARN IAM authorizes a request on. An SSM parameter read with a selector (`GetParameter` of `<name>:<version>`
    or `<name>:<label>`) is authorized on the parameter's own ARN: names cannot hold ':', so what follows one is the
    selector."""
    parts = resource.split(":", 5)
    if len(parts) == 6 and parts[2] == "ssm" and parts[5].startswith("parameter/"):
        parts[5] = parts[5].split(":", 1)[0]
        return ":".join(parts)
    return resource


def _resource_applies(statement: Statement, resource: str) -> bool:
    resource = iam_resource(resource)
    if "Resource" in statement:
        return any(arn_matches(pattern, resource) for pattern in _as_list(statement["Resource"]))
    return not any(arn_matches(pattern, resource) for pattern in _as_list(statement["NotResource"]))


def statement_applies(statement: Statement, request: Request, context: Mapping[str, Any]) -> bool:
    """Action, resource and condition all match (the principal is checked separately, for resource policies)."""
    _check_statement(statement)
    return (
        _action_applies(statement, request.action)
        and _resource_applies(statement, request.resource)
        and condition_holds(statement.get("Condition") or {}, context)
    )


def principal_match(principal_element: Any, principal: Principal) -> str | None:
    """How a resource-policy statement names `principal`: "direct", "account" (delegated to IAM), or None."""
    if principal_element is None:
        raise UnsupportedPolicyError("a resource-policy statement needs a Principal")
    if principal_element == "*":
        return "direct"
    if not isinstance(principal_element, Mapping):
        raise UnsupportedPolicyError(f"unsupported Principal {principal_element!r}")
    found: str | None = None
    for kind, values in principal_element.items():
        for value in _as_list(values):
            if kind == "AWS":
                if value == "*" or (principal.arn and value == principal.arn):
                    return "direct"
                account = value if _ACCOUNT.match(value) else ""
                if value.startswith("arn:") and value.endswith(":root"):
                    account = arn_account(value)
                if account and principal.arn and account == principal.account:
                    found = "account"
            elif kind == "Service":
                if principal.service and value == principal.service:
                    return "direct"
            else:
                raise UnsupportedPolicyError(f"unsupported principal type {kind!r}")
    return found


def _label(name: str, index: int, statement: Statement) -> str:
    return f"{name}/{statement.get('Sid') or index}"


def _statements(policy: Policy) -> list[Statement]:
    return [dict(s) for s in _as_list(policy.get("Statement", []))]


# --- evaluation --------------------------------------------------------------------------------------------------


def _identity_hits(
    policies: Iterable[Policy], request: Request, context: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """(explicit denies, allows) among the identity policies' statements."""
    denies: list[str] = []
    allows: list[str] = []
    for number, policy in enumerate(policies):
        for index, statement in enumerate(_statements(policy)):
            if "Principal" in statement:
                raise UnsupportedPolicyError("an identity-policy statement cannot have a Principal")
            if statement_applies(statement, request, context):
                label = _label(f"identity[{number}]", index, statement)
                (denies if statement["Effect"] == "Deny" else allows).append(label)
    return denies, allows


def evaluate(
    principal: Principal,
    request: Request,
    identity_policies: Sequence[Policy] = (),
    resource_policy: Policy | None = None,
    *,
    key_policy: bool = False,
) -> Result:
    """Decide `request` by `principal` under its identity policies and the resource's policy (if any).

    `key_policy=True` marks `resource_policy` as a KMS key policy, which must itself allow (directly, or through
    the account root and an identity policy) even in the key's own account.
    """
    context = {**principal.default_context(request.action), **request.context}
    identity = [] if principal.service else list(identity_policies)
    denies, identity_allows = _identity_hits(identity, request, context)
    direct_allows: list[str] = []
    account_allows: list[str] = []
    for index, statement in enumerate(_statements(resource_policy or {})):
        if "NotPrincipal" in statement:
            raise UnsupportedPolicyError("NotPrincipal is not supported")
        matched = principal_match(statement.get("Principal"), principal)
        if matched is None or not statement_applies(statement, request, context):
            continue
        label = _label("resource", index, statement)
        if statement["Effect"] == "Deny":
            denies.append(label)
        else:
            (direct_allows if matched == "direct" else account_allows).append(label)
    if denies:
        return Result(Decision.EXPLICIT_DENY, tuple(denies))
    resource_account = arn_account(request.resource) or principal.account
    same_account = bool(principal.service) or resource_account == principal.account
    if same_account and not key_policy:
        granted = identity_allows + direct_allows  # either side suffices
    elif same_account:  # a KMS key policy decides: directly, or by delegating to the account's IAM policies
        granted = direct_allows or (account_allows + identity_allows if account_allows and identity_allows else [])
    else:  # across accounts both sides must grant
        resource_side = direct_allows + account_allows
        granted = identity_allows + resource_side if identity_allows and resource_side else []
    if granted:
        return Result(Decision.ALLOW, tuple(granted))
    return Result(Decision.IMPLICIT_DENY)


def identity_allows(policies: Iterable[Policy], request: Request, principal: Principal | None = None) -> Result:
    """The identity policies alone, as if the resource were in the caller's account and had no policy of its own
    (the least-privilege checks: does the role's own policy grant this call?)."""
    principal = principal or Principal()
    context = {**principal.default_context(request.action), **request.context}
    denies, allows = _identity_hits(policies, request, context)
    if denies:
        return Result(Decision.EXPLICIT_DENY, tuple(denies))
    if allows:
        return Result(Decision.ALLOW, tuple(allows))
    return Result(Decision.IMPLICIT_DENY)
