"""Every AWS call the suite makes, suite-wide: which IAM action, on which resource, by which part of keyrot.

`botocore.client.BaseClient._make_api_call` is wrapped for the whole run (every client of every session passes
through it, whatever events a test registers). Each call is recorded with:

- its IAM action, `<IAM prefix>:<Operation>` (botocore's signing name is the prefix, except CloudWatch's
  `monitoring`, which IAM calls `cloudwatch`);
- the resource(s) it touched when the parameters or the answer say (a secret's full ARN from the answer, an SSM
  parameter's ARN from its name, a topic's ARN, a log group's ARN...) or `*` for actions without resource-level
  permissions, plus the condition keys it sets (`cloudwatch:namespace`);
- its **actor**, read from the Python call stack: the first frame outside botocore/boto3 must be keyrot's runtime
  code (not `lab`), else the call is test set-up, moto set-up, the rehearsal's provisioning or a
  stand-in and is ignored. Walking outwards until the next botocore/boto3/moto frame (a request inside a request,
  as when the emulated RotateSecret runs the handler), the actor is `cli` if any frame is in `keyrot.cli`, else
  `app` (`keyrot.client`), else `monitor` (`keyrot.monitor`, `keyrot.handlers.monitor`: checked before rotation
  because the janitor revokes through `keyrot.rotation.revoke`), else `guardrails` (`keyrot.guardrails`,
  `keyrot.handlers.guardrails`), else `admin-rotation` (`keyrot.admin_rotation`, `keyrot.handlers.rotate_admin`:
  checked before rotation, whose helpers it may share), else `rotation` (`keyrot.rotation`,
  `keyrot.handlers.rotate`; `keyrot.aws` only counts when reached from one of these).

At the end of the session the observed set goes to `build/aws-actions.json`, and every call by `rotation`,
`monitor`, `guardrails`, `admin-rotation` or `app` is checked against the dev stack's policies as the Pulumi program
declares them (each function role's inline policy, the reader policies), with each policy's resources widened to their
type (`secret:*`, `parameter/*`, ...), since tests use their own environments and names. An action the policy
does not grant fails the run with a report. The exact resources are checked by tests/prove/test_least_privilege.py
on scenarios that use the dev stack's names. Registered from tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import threading
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests.support.iam_eval import Policy, Request, identity_allows

ACTORS = ("cli", "app", "monitor", "guardrails", "admin-rotation", "rotation")  # in the order the stack is searched
CHECKED_ACTORS = ("rotation", "monitor", "guardrails", "admin-rotation", "app")
EMULATOR_ACCOUNT = "123456789012"  # moto's default account (MOTO_ACCOUNT_ID overrides it, as moto does)
REPORT_HEADER = "least privilege: AWS calls the dev stack's policies do not grant"
_IAM_PREFIX = {"monitoring": "cloudwatch"}
_LIBRARY_MODULES = ("botocore", "boto3", "moto")


# --- what one call was --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    actor: str
    action: str  # e.g. secretsmanager:GetSecretValue
    resources: tuple[str, ...]  # ARNs, or "*"
    context: tuple[tuple[str, str], ...] = ()  # condition keys the request carries
    error: str | None = None  # the error code, when the call failed (IAM was evaluated all the same)

    def requests(self) -> list[Request]:
        return [Request(self.action, resource, dict(self.context)) for resource in self.resources]


def iam_prefix(client: Any) -> str:
    signing = client.meta.service_model.signing_name
    return _IAM_PREFIX.get(signing, signing)


def _account() -> str:
    return os.environ.get("MOTO_ACCOUNT_ID", EMULATOR_ACCOUNT)


def _arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{_account()}:{resource}"


def resources_of(prefix: str, operation: str, params: Mapping[str, Any], response: Any, region: str) -> tuple[str, ...]:
    """The resources a call acts on, as IAM evaluates it, when the parameters (or the answer) say; else `*`."""
    answer = response if isinstance(response, Mapping) else {}
    if prefix == "secretsmanager":
        if operation in ("ListSecrets", "GetRandomPassword", "BatchGetSecretValue"):
            return ("*",)
        if str(answer.get("ARN", "")).startswith("arn:"):  # (moto answers ListSecretVersionIds with the name)
            return (answer["ARN"],)  # the full ARN, with Secrets Manager's random suffix
        secret = str(params.get("SecretId") or params.get("Name") or "")
        return (secret if secret.startswith("arn:") else _arn("secretsmanager", region, f"secret:{secret}"),)
    if prefix == "ssm" and ("Name" in params or "Names" in params):
        names = [params["Name"]] if "Name" in params else list(params["Names"])
        return tuple(_arn("ssm", region, f"parameter{n if n.startswith('/') else '/' + n}") for n in names)
    if prefix == "sns":
        topic = params.get("TopicArn") or params.get("TargetArn") or answer.get("TopicArn")
        return (str(topic),) if topic else ("*",)
    if prefix == "logs" and "logGroupName" in params:
        group = _arn("logs", region, f"log-group:{params['logGroupName']}")
        stream = params.get("logStreamName")
        return (f"{group}:log-stream:{stream}",) if stream and operation == "PutLogEvents" else (f"{group}:*",)
    if prefix == "lambda" and "FunctionName" in params:
        name = str(params["FunctionName"])
        return (name if name.startswith("arn:") else _arn("lambda", region, f"function:{name}"),)
    if prefix == "kms" and "KeyId" in params:
        key = str(params["KeyId"])
        return (
            key if key.startswith("arn:") else _arn("kms", region, key if key.startswith("alias/") else f"key/{key}"),
        )
    if prefix == "sqs" and "QueueUrl" in params:
        return (_arn("sqs", region, str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]),)
    return ("*",)  # CloudWatch metrics and alarms, DescribeLogGroups, STS: no resource-level permissions


def context_of(prefix: str, operation: str, params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    if prefix == "cloudwatch" and operation == "PutMetricData":
        return (("cloudwatch:namespace", str(params.get("Namespace", ""))),)
    return ()


# --- who made it ----------------------------------------------------------------------------------------------------


def _module(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", ""))


def _is_library(name: str) -> bool:
    return name.split(".", 1)[0] in _LIBRARY_MODULES


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def _is_runtime(name: str) -> bool:
    return _within(name, "keyrot") and not _within(name, "lab")


def _category(name: str) -> str | None:
    if _within(name, "keyrot.cli"):
        return "cli"
    if _within(name, "keyrot.client"):
        return "app"
    if _within(name, "keyrot.monitor") or name == "keyrot.handlers.monitor":
        return "monitor"
    if _within(name, "keyrot.guardrails") or name == "keyrot.handlers.guardrails":
        return "guardrails"
    if _within(name, "keyrot.admin_rotation") or name == "keyrot.handlers.rotate_admin":
        return "admin-rotation"
    if _within(name, "keyrot.rotation") or name == "keyrot.handlers.rotate":
        return "rotation"
    return None


def actor_of(frame: FrameType | None) -> str | None:
    """The keyrot component that made the call whose innermost frame is `frame`, or None (ignored)."""
    while frame is not None and _is_library(_module(frame)):
        frame = frame.f_back
    if frame is None or not _is_runtime(_module(frame)):
        return None
    found: set[str] = set()
    while frame is not None and not _is_library(_module(frame)):
        category = _category(_module(frame))
        if category:
            found.add(category)
        frame = frame.f_back
    return next((actor for actor in ACTORS if actor in found), None)


# --- recording ------------------------------------------------------------------------------------------------------


@dataclass
class Recording:
    calls: Counter[Call] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)

    def add(self, call: Call) -> None:
        self.calls[call] += 1

    def by_actor(self, actor: str) -> list[Call]:
        return [call for call in self.calls if call.actor == actor]

    def actions(self, actor: str) -> set[str]:
        return {call.action for call in self.by_actor(actor)}


_lock = threading.Lock()
_sessions: list[Recording] = []  # a stack, like the hygiene plugin's: nested in-process sessions
_scopes: list[Recording] = []  # recording() blocks currently open
_original: dict[str, Callable[..., Any]] = {}


def _record(call: Call | None, action: str) -> None:
    with _lock:
        for target in [*_sessions[-1:], *_scopes]:
            if call is None:
                target.ignored[action] += 1
            else:
                target.add(call)


def _install() -> None:
    with _lock:
        if _original:
            return
        from botocore.client import BaseClient
        from botocore.exceptions import ClientError

        original = BaseClient._make_api_call
        _original["_make_api_call"] = original

        def _make_api_call(self: Any, operation_name: str, api_params: Mapping[str, Any]) -> Any:
            actor = actor_of(sys._getframe(1))
            action = f"{iam_prefix(self)}:{operation_name}"
            response: Any = None
            error: str | None = None
            try:
                response = original(self, operation_name, api_params)
                return response
            except ClientError as exc:
                error = str(exc.response.get("Error", {}).get("Code") or "ClientError")
                raise
            except BaseException as exc:
                error = type(exc).__name__
                raise
            finally:
                call = None
                if actor is not None:
                    prefix = action.split(":", 1)[0]
                    region = str(self.meta.region_name or "")
                    call = Call(
                        actor,
                        action,
                        resources_of(prefix, operation_name, api_params, response, region),
                        context_of(prefix, operation_name, api_params),
                        error,
                    )
                _record(call, action)

        BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]


@contextlib.contextmanager
def recording() -> Iterator[Recording]:
    """Collect the calls made while the block runs (the session keeps recording them too)."""
    _install()
    scope = Recording()
    with _lock:
        _scopes.append(scope)
    try:
        yield scope
    finally:
        with _lock:
            _scopes.remove(scope)


# --- the dev stack's policies ---------------------------------------------------------------------------------------


def harness() -> Any:
    """tests/infra's harness module (its per-session cache of deployments is shared when tests/infra ran)."""
    return sys.modules.get("infra_harness") or importlib.import_module("tests.infra.infra_harness")


def role_policy(deployment: Any, role_name: str) -> Policy:
    (resource,) = deployment.find("aws:iam/rolePolicy:RolePolicy", lambda r: r.inputs["role"] == role_name)
    return dict(json.loads(resource.inputs["policy"]))


def reader_policies(deployment: Any) -> dict[str, Policy]:
    """Key name -> its reader policy document."""
    return {
        r.inputs["tags"]["keyrot:key-name"]: dict(json.loads(r.inputs["policy"]))
        for r in deployment.of_type("aws:iam/policy:Policy")
    }


def actor_policies(deployment: Any) -> dict[str, list[Policy]]:
    """The identity policies each actor runs with in `deployment` (the app: any key's reader policy; a function the
    stack does not deploy: none, so any call it makes is reported)."""
    env = deployment.outputs["environment"]
    roles = {
        "rotation": f"keyrot-{env}-rotation",
        "monitor": f"keyrot-{env}-monitor",
        "guardrails": f"keyrot-{env}-guardrails",
        "admin-rotation": f"keyrot-{env}-admin-rotation",
    }
    declared = {r.inputs["role"] for r in deployment.of_type("aws:iam/rolePolicy:RolePolicy")}
    found = {actor: [role_policy(deployment, role)] if role in declared else [] for actor, role in roles.items()}
    return {**found, "app": list(reader_policies(deployment).values())}


def widen(policy: Policy) -> Policy:
    """`policy` with each resource ARN widened to any resource of its type, in any region and account."""

    def wide(resource: str) -> str:
        parts = resource.split(":", 5)
        if resource == "*" or len(parts) != 6:
            return resource
        kind = next((parts[5][: i + 1] for i, c in enumerate(parts[5]) if c in "/:"), "")
        return ":".join([*parts[:3], "*", "*", f"{kind}*"])

    statements = []
    for statement in policy["Statement"]:
        widened = dict(statement)
        for key in ("Resource", "NotResource"):
            if key in widened:
                values = widened[key] if isinstance(widened[key], list) else [widened[key]]
                widened[key] = sorted({wide(v) for v in values})
        statements.append(widened)
    return {**policy, "Statement": statements}


_widened: dict[str, dict[str, list[Policy]]] = {}


def dev_policies_by_type() -> dict[str, list[Policy]]:
    """The dev stack's policies per actor, widened to resource types; the program runs once per session at most."""
    if "dev" not in _widened:
        module = harness()
        try:
            with warnings.catch_warnings():  # pulumi_aws's own deprecation notices, if it is first imported here
                warnings.simplefilter("ignore", DeprecationWarning)
                policies = actor_policies(module.deployed("dev"))
        finally:
            module.close_harness_event_loop()
        _widened["dev"] = {actor: [widen(p) for p in found] for actor, found in policies.items()}
    return _widened["dev"]


# --- checking -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ungranted:
    call: Call
    resource: str

    def describe(self) -> str:
        context = "".join(f" [{key}={value}]" for key, value in self.call.context)
        return f"{self.call.actor}: {self.call.action} on {self.resource}{context}"


def ungranted(
    calls: Iterable[Call],
    policies: Sequence[Policy],
    translate: Callable[[str], str] = lambda resource: resource,
) -> list[Ungranted]:
    """The calls (per resource) that `policies` do not allow; `translate` maps an observed resource first."""
    found: dict[tuple[Call, str], Ungranted] = {}
    for call in calls:
        for request in call.requests():
            resource = translate(request.resource)
            if not identity_allows(policies, Request(request.action, resource, request.context)).allowed:
                found.setdefault((call, resource), Ungranted(call, resource))
    return sorted(found.values(), key=lambda u: (u.call.actor, u.call.action, u.resource))


def session_violations(recorded: Recording, policies: Mapping[str, Sequence[Policy]]) -> list[Ungranted]:
    violations: list[Ungranted] = []
    for actor in CHECKED_ACTORS:
        calls = recorded.by_actor(actor)
        if calls:
            violations += ungranted(calls, policies[actor])
    return violations


def summary(recorded: Recording) -> dict[str, Any]:
    """What build/aws-actions.json holds: per actor, per action, how often, on which resources, which errors."""
    actors: dict[str, dict[str, dict[str, Any]]] = {}
    for actor in ACTORS:
        per_action: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"calls": 0, "resources": set(), "conditions": set(), "errors": Counter()}
        )
        for call, count in recorded.calls.items():
            if call.actor != actor:
                continue
            entry = per_action[call.action]
            entry["calls"] += count
            entry["resources"].update(call.resources)
            entry["conditions"].update(f"{k}={v}" for k, v in call.context)
            if call.error:
                entry["errors"][call.error] += count
        actors[actor] = {
            action: {
                "calls": entry["calls"],
                "distinct_resources": len(entry["resources"]),
                "resources": sorted(entry["resources"])[:25],
                **({"conditions": sorted(entry["conditions"])} if entry["conditions"] else {}),
                **({"errors": dict(entry["errors"])} if entry["errors"] else {}),
            }
            for action, entry in sorted(per_action.items())
        }
    return {"actors": actors, "ignored": dict(sorted(recorded.ignored.items()))}


# --- pytest hooks ---------------------------------------------------------------------------------------------------

_RESULT = pytest.StashKey[tuple[Recording, list[Ungranted], Path]]()


def pytest_configure(config: pytest.Config) -> None:
    _install()
    with _lock:
        _sessions.append(Recording())


def pytest_unconfigure(config: pytest.Config) -> None:
    with _lock:
        if _sessions:
            _sessions.pop()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    with _lock:
        if not _sessions:
            return
        recorded = _sessions[-1]
    violations: list[Ungranted] = []
    if any(recorded.by_actor(actor) for actor in CHECKED_ACTORS):
        violations = session_violations(recorded, dev_policies_by_type())
    document = summary(recorded)
    document["ungranted_by_dev_policies"] = [v.describe() for v in violations]
    path = session.config.rootpath / "build" / "aws-actions.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    session.config.stash[_RESULT] = (recorded, violations, path)
    if violations:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    result = config.stash.get(_RESULT, None)
    if result is None:
        return
    recorded, violations, path = result
    counts = ", ".join(f"{actor} {len(recorded.actions(actor))}" for actor in ACTORS)
    try:
        shown = path.relative_to(config.rootpath)
    except ValueError:
        shown = path
    terminalreporter.write_line(f"AWS actions observed per actor: {counts} ({shown})")
    if violations:
        terminalreporter.write_sep("=", REPORT_HEADER, red=True)
        for violation in violations:
            terminalreporter.write_line(f"  - {violation.describe()}", red=True)
        terminalreporter.write_line(
            "Grant it in keyrot/pulumi/policies.py (and say why in tests/prove/test_least_privilege.py), "
            "or stop calling it.",
            red=True,
        )
