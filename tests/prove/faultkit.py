"""Shared machinery of the fault matrices: a call log that injects faults, the fault kinds, telemetry parsing, tallies.

A scenario is (one remote call of a recorded run) x (one fault kind). Calls are identified by their name and by
their occurrence, so a scenario targets "the 2nd GetSecretValue" or "the 1st call to the stand-in's list_models":

- AWS faults hit the n-th occurrence of an operation, made by the function's own client (the production factory's,
  with its retry configuration). Some are raised by botocore event hooks, past botocore's retries: before the
  request is sent (it never reaches AWS) or after the answer came back (it reached AWS, the Lambda never saw the
  answer). The others are served on the wire, by a `before-send` handler, on every HTTP attempt botocore makes of
  the call, so that botocore's own retry handling (retryable status, connection errors, backoff) runs and the
  logical call fails only once the client has done all it does: an error answer (a 503, an HTML page from a
  proxy) that never reached AWS, or a connection dropped after moto applied the request.
- OpenAI faults are stand-in `Fault`s on the n-th call to an endpoint and on the transport's retries of it, so the
  logical call fails after the transport has done all it does.
- A crash is `SimulatedCrash` (a BaseException, like the process dying) right after the call's answer arrived.
"""

from __future__ import annotations

import json
import threading
import time
import types
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import botocore.endpoint
import pytest
import requests
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from botocore.retries.standard import RetryQuotaChecker
from moto.core.models import botocore_stubber

from keyrot import metric_names as m
from lab.openai_standin import Fault, OpenAIStandIn, rate_limited, server_error
from lab.remote_calls import RemoteCallLog, SimulatedCrash, openai_call_name
from lab.rotation_driver import RotationDriver

AWS_ENDPOINT = "https://aws.amazonaws.com/"
UNREACHED_URL = "https://keyrot-fault.invalid/"  # where a request answered by a wire fault goes: not to moto
# A read timeout: the stand-in answers only after LATENCY, the client gives up after READ_TIMEOUT. Only the faulted
# call (and its retries) gets the short read timeout, so no other call can time out by accident.
READ_TIMEOUT_SECONDS = 0.05
LATENCY_SECONDS = 0.25
RETRY_AFTER_SECONDS = 1.0


# --- fault kinds --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireFault:
    """What every HTTP attempt of the faulted call gets: an answer (`status`, and a body for the service's protocol)
    that never reached AWS, or, with `drop`, the request lands (moto applies it) and then the connection fails."""

    status: int = 0
    body: Callable[[str], tuple[dict[str, str], bytes]] | None = None  # protocol -> (headers, body)
    drop: Callable[[str], Exception] | None = None  # url -> the error the HTTP layer raises


@dataclass(frozen=True)
class AwsFaultKind:
    name: str
    code: str  # the AwsCallError code keyrot must report
    make: Callable[[str], Exception] | None = None  # raised by a botocore hook (past botocore's retries) ...
    after_effect: bool = False  # ... after the call reached AWS (its effect happened) instead of before
    wire: WireFault | None = None  # ... or served on the wire, on every attempt botocore makes

    @property
    def expected_error(self) -> str:
        return "AwsCallError"


@dataclass(frozen=True)
class OpenAIFaultKind:
    name: str
    expected_error: str
    make: Callable[[str, Iterable[int]], Fault]
    short_read_timeout: bool = False
    after_effect: bool = False  # the call's effect happens although the client sees a failure


@dataclass(frozen=True)
class CrashKind:
    name: str = "crash after the call"
    expected_error: str = "SimulatedCrash"


def _client_error(code: str, status: int, message: str) -> Callable[[str], Exception]:
    def make(operation: str) -> Exception:
        error = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(error, operation)  # type: ignore[arg-type]

    return make


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 256
    return (bytes([0x60 + len(data)]) if len(data) < 24 else bytes([0x78, len(data)])) + data


def _aws_error_body(code: str, message: str) -> Callable[[str], tuple[dict[str, str], bytes]]:
    """An AWS error answer as the service's protocol spells it (what botocore parses the error code from)."""

    def body(protocol: str) -> tuple[dict[str, str], bytes]:
        request_id = {"x-amzn-RequestId": "00000000-0000-4000-8000-000000000000"}
        if protocol == "query":
            xml = (
                f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>{request_id['x-amzn-RequestId']}</RequestId></ErrorResponse>"
            )
            return {"Content-Type": "text/xml", **request_id}, xml.encode()
        if protocol == "smithy-rpc-v2-cbor":
            cbor = b"\xa2" + _cbor_text("__type") + _cbor_text(code) + _cbor_text("message") + _cbor_text(message)
            return {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor", **request_id}, cbor
        assert protocol == "json", protocol
        text = json.dumps({"__type": code, "message": message})
        return {"Content-Type": "application/x-amz-json-1.1", **request_id}, text.encode()

    return body


def _html_body(protocol: str) -> tuple[dict[str, str], bytes]:
    """A load balancer's or proxy's error page: not the service's protocol at all."""
    return {"Content-Type": "text/html"}, b"<html><body><h1>500 Internal Server Error</h1></body></html>"


AWS_FAULTS: tuple[AwsFaultKind, ...] = (
    AwsFaultKind(
        "AWS 500 InternalServiceError", "InternalServiceError", _client_error("InternalServiceError", 500, "x")
    ),
    AwsFaultKind("AWS throttled", "ThrottlingException", _client_error("ThrottlingException", 400, "Rate exceeded")),
    AwsFaultKind(
        "AWS read timeout after the call landed",
        "ReadTimeoutError",
        lambda _: ReadTimeoutError(endpoint_url=AWS_ENDPOINT),
        after_effect=True,
    ),
    AwsFaultKind(
        "AWS endpoint unreachable",
        "EndpointConnectionError",
        lambda _: EndpointConnectionError(endpoint_url=AWS_ENDPOINT),
    ),
    # On the wire: botocore retries these (5xx and connection errors are transient to it) until its attempts run out
    AwsFaultKind(
        "AWS HTTP 503 ServiceUnavailable",
        "ServiceUnavailable",
        wire=WireFault(503, _aws_error_body("ServiceUnavailable", "Service is unavailable")),
    ),
    AwsFaultKind(
        "AWS HTTP 500 with a non-JSON (HTML) body",
        "500",  # botocore's generic error parse: the status code stands in for the unreadable error code
        wire=WireFault(500, _html_body),
    ),
    AwsFaultKind(
        "AWS dropped connection after the call landed",
        "ConnectionClosedError",
        after_effect=True,
        wire=WireFault(drop=lambda url: ConnectionClosedError(endpoint_url=url)),
    ),
)

OPENAI_FAULTS: tuple[OpenAIFaultKind, ...] = (
    OpenAIFaultKind("HTTP 500", "ServerError", lambda endpoint, calls: server_error(endpoint, calls, status=500)),
    OpenAIFaultKind("HTTP 503", "ServerError", lambda endpoint, calls: server_error(endpoint, calls, status=503)),
    OpenAIFaultKind(
        "HTTP 429 with Retry-After",
        "RateLimitedError",
        lambda endpoint, calls: rate_limited(endpoint, calls, retry_after=RETRY_AFTER_SECONDS),
    ),
    OpenAIFaultKind(
        "read timeout",
        "OpenAIConnectionError",
        lambda endpoint, calls: Fault(endpoint, calls, status=None, latency_seconds=LATENCY_SECONDS),
        short_read_timeout=True,
        after_effect=True,
    ),
    OpenAIFaultKind(
        "dropped connection after the call landed",
        "OpenAIConnectionError",
        lambda endpoint, calls: Fault(endpoint, calls, drop_connection=True, after_effect=True),
        after_effect=True,
    ),
    OpenAIFaultKind(
        "non-JSON 200 body after the call landed",
        "MalformedResponseError",
        lambda endpoint, calls: Fault(endpoint, calls, status=200, non_json=True, after_effect=True),
        after_effect=True,
    ),
)

CRASH = CrashKind()
FaultKind = AwsFaultKind | OpenAIFaultKind | CrashKind


# --- the recorded run ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    index: int  # 1-based position in the run
    name: str  # "aws:PutSecretValue", "openai:GET /models", ...
    occurrence: int  # 1-based: the how-many-th call of this AWS operation, or to this stand-in endpoint
    step: str | None = None  # the rotation step (or monitor phase) that made it
    endpoint: str | None = None  # the stand-in endpoint of an OpenAI call
    name_occurrence: int = 0  # 1-based: the how-many-th call with this name (usage kinds share one endpoint)

    @property
    def is_aws(self) -> bool:
        return self.name.startswith("aws:")

    def kinds(self) -> tuple[FaultKind, ...]:
        return (*(AWS_FAULTS if self.is_aws else OPENAI_FAULTS), CRASH)

    def label(self) -> str:
        where = f" in {self.step}" if self.step else ""
        return f"#{self.index} {self.name} (occurrence {self.occurrence}){where}"


def sequence(log: FaultLog, openai: OpenAIStandIn) -> list[Call]:
    """The calls of a recorded run. The stand-in's own call records (reset before the run) name the endpoints."""
    endpoints = [record.endpoint for record in openai.calls]
    openai_names = [name for name in log.calls if name.startswith("openai:")]
    assert len(endpoints) == len(openai_names), (endpoints, openai_names)
    endpoint_of = iter(endpoints)
    per_endpoint: Counter[str] = Counter()
    per_name: Counter[str] = Counter()
    calls = []
    for index, (name, step) in enumerate(zip(log.calls, log.steps, strict=True), start=1):
        endpoint = next(endpoint_of) if name.startswith("openai:") else None
        per_endpoint[endpoint or name] += 1
        per_name[name] += 1
        calls.append(Call(index, name, per_endpoint[endpoint or name], step, endpoint, per_name[name]))
    return calls


@dataclass(frozen=True)
class AwsFault:
    call: str
    occurrence: int
    kind: AwsFaultKind


@dataclass(frozen=True)
class SlowCall:
    """Calls `call` number occurrence .. occurrence + attempts - 1 are sent with a short read timeout."""

    call: str
    occurrence: int
    attempts: int

    def covers(self, name: str, number: int) -> bool:
        return name == self.call and self.occurrence <= number < self.occurrence + self.attempts


class FaultLog(RemoteCallLog):
    """A RemoteCallLog that also records AWS calls answered with an error, notes the step each call belongs to,
    runs `watch` after every call (before any crash), and injects one AWS fault."""

    def __init__(self, watch: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.steps: list[str | None] = []
        self.step: str | None = None
        self.watch = watch
        self.aws_fault: AwsFault | None = None
        self.slow_call: SlowCall | None = None
        self.wire_attempts = 0  # HTTP attempts botocore made of the call with a wire fault
        self._wire: AwsFault | None = None  # the wire fault of the call in flight
        self._occurrences: Counter[str] = Counter()
        self._fault_lock = threading.Lock()

    def session(self) -> requests.Session:
        """A session that records each answered request and shortens the read timeout of the slow call."""
        log = self

        class FaultSession(requests.Session):
            def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
                name = openai_call_name(str(method), str(url))
                number = log._count(name)
                slow = log.slow_call
                if slow is not None and slow.covers(name, number):
                    connect, _ = kwargs.get("timeout") or (2.0, None)
                    kwargs["timeout"] = (connect, READ_TIMEOUT_SECONDS)
                response = super().request(method, url, *args, **kwargs)
                log.record(name)
                return response

        return FaultSession()

    def _count(self, name: str) -> int:
        with self._fault_lock:
            self._occurrences[name] += 1
            return self._occurrences[name]

    def attach(self, boto3_client: Any) -> Any:
        protocol = boto3_client.meta.service_model.resolved_protocol
        boto3_client.meta.events.register("before-call.*.*", self._before_aws_call)
        boto3_client.meta.events.register("after-call.*.*", self._after_aws_call)
        # More specific than moto's "before-send" handler, so it runs first and can answer in its place
        boto3_client.meta.events.register(
            "before-send.*.*", lambda **kwargs: self._before_send(protocol=protocol, **kwargs)
        )
        return boto3_client

    def record(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)
            self.steps.append(self.step)
            crash = self.crash_after is not None and len(self.calls) == self.crash_after
        if self.watch is not None:
            self.watch(name)
        if crash:
            raise SimulatedCrash(f"crash after call {len(self.calls)}: {name}")

    def _before_aws_call(self, model: Any = None, context: Any = None, **_: Any) -> None:
        name = f"aws:{model.name}"
        number = self._count(name)
        fault = self.aws_fault
        self._wire = None
        if fault is None or fault.call != name or fault.occurrence != number:
            return
        if fault.kind.wire is not None:
            self._wire = fault  # served by _before_send, on each attempt botocore makes of this call
            return
        if fault.kind.after_effect:
            context["keyrot_fault"] = fault.kind
            return
        assert fault.kind.make is not None
        raise fault.kind.make(model.name)

    def _after_aws_call(self, model: Any = None, context: Any = None, **_: Any) -> None:
        self._wire = None
        self.record(f"aws:{model.name}")
        kind = context.pop("keyrot_fault", None) if context is not None else None
        if kind is not None:
            raise kind.make(model.name)

    def _before_send(self, protocol: str, request: Any = None, event_name: str = "", **_: Any) -> AWSResponse | None:
        """One HTTP attempt: None lets it through (to moto), an AWSResponse answers it, an exception fails it."""
        fault = self._wire
        if fault is None or f"aws:{event_name.rsplit('.', 1)[-1]}" != fault.call:
            return None
        wire = fault.kind.wire
        assert wire is not None
        self.wire_attempts += 1
        if wire.drop is not None:
            landed = botocore_stubber(event_name=event_name, request=request)  # AWS applies the request ...
            assert landed is not None, "moto did not answer"
            if landed.status_code < 300:
                self.record(fault.call)  # (the invariants hold after each attempt that took effect)
            raise wire.drop(request.url)  # ... and the answer is lost with the connection
        assert wire.body is not None
        headers, body = wire.body(protocol)
        answer = AWSResponse(request.url, wire.status, headers, _RawBody(body))
        # botocore runs every before-send handler and keeps the first answer: moto's, which comes next, would still
        # apply the request. Pointed at no AWS endpoint, moto lets it pass: the request never reaches AWS.
        request.url = UNREACHED_URL
        return answer


class _RawBody:
    """The raw HTTP body an AWSResponse reads its content from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self._body


class Relay:
    """Creating boto3 clients is slow: instrument them once and point them at each scenario's log in turn.

    Each scenario is a failure episode of its own: pointing the relay at its log also refills the clients' retry
    quotas, which botocore shares across all calls of a client (500 tokens, 14 per retry) and which the faults of
    earlier scenarios would otherwise drain, cutting the retries the next fault gets.
    """

    def __init__(self) -> None:
        self.log: FaultLog | None = None
        self.clients: list[Any] = []

    def attach(self, boto3_client: Any) -> Any:
        protocol = boto3_client.meta.service_model.resolved_protocol
        boto3_client.meta.events.register("before-call.*.*", self._before)
        boto3_client.meta.events.register("after-call.*.*", self._after)
        boto3_client.meta.events.register("before-send.*.*", lambda **kwargs: self._send(protocol, **kwargs))
        self.clients.append(boto3_client)
        return boto3_client

    def use(self, log: FaultLog) -> None:
        self.log = log
        for client in self.clients:
            refill_retry_quota(client)

    def _before(self, **kwargs: Any) -> None:
        if self.log is not None:
            self.log._before_aws_call(**kwargs)

    def _after(self, **kwargs: Any) -> None:
        if self.log is not None:
            self.log._after_aws_call(**kwargs)

    def _send(self, protocol: str, **kwargs: Any) -> AWSResponse | None:
        return self.log._before_send(protocol, **kwargs) if self.log is not None else None


def max_attempts(boto3_client: Any) -> int:
    """The HTTP attempts botocore makes of one call with this client's retry configuration."""
    return int(boto3_client.meta.config.retries["total_max_attempts"])


def refill_retry_quota(boto3_client: Any) -> None:
    """Give the client's retry quota (standard and adaptive retry modes) its full capacity back."""
    service = boto3_client.meta.service_model.service_id.hyphenize()
    handlers = boto3_client.meta.events._emitter._handlers.prefix_search(f"after-call.{service}.Any")
    checkers = [h.__self__ for h in handlers if isinstance(getattr(h, "__self__", None), RetryQuotaChecker)]
    assert checkers, f"no retry quota found on the {service} client"
    for checker in checkers:
        quota = checker._quota
        quota.release(quota._max_capacity)


def skip_botocore_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore sleeps between retries (up to 20 s each, in botocore.endpoint): record the sleeps instead."""
    sleeps: list[float] = []
    clock = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    clock.sleep = sleeps.append
    monkeypatch.setattr(botocore.endpoint, "time", clock)
    return sleeps


def openai_fault(kind: OpenAIFaultKind, call: Call, attempts: int) -> Fault:
    """The fault for `call` and every retry the transport makes of it."""
    assert call.endpoint is not None
    return kind.make(call.endpoint, range(call.occurrence, call.occurrence + attempts))


def inject(log: FaultLog, openai: OpenAIStandIn, call: Call, kind: FaultKind, attempts: int) -> None:
    """Arm `kind` at `call`: a botocore hook, a stand-in fault (and a short read timeout), or a crash."""
    if isinstance(kind, AwsFaultKind):
        log.aws_fault = AwsFault(call.name, call.occurrence, kind)
    elif isinstance(kind, OpenAIFaultKind):
        openai.faults.add(openai_fault(kind, call, attempts))
        if kind.short_read_timeout:
            log.slow_call = SlowCall(call.name, call.name_occurrence, attempts)
    else:
        log.crash_after = call.index


def disarm(log: FaultLog, openai: OpenAIStandIn, call: Call, kind: FaultKind) -> None:
    """Let requests the function gave up on land (a retry comes later), then remove every fault."""
    if isinstance(kind, OpenAIFaultKind) and kind.after_effect and call.endpoint is not None:
        deadline = time.monotonic() + 5.0
        while len(openai.calls_to(call.endpoint)) < openai.faults.count(call.endpoint):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
    openai.faults.clear()
    log.aws_fault, log.crash_after, log.slow_call, log._wire = None, None, None, None


class ArnDriver(RotationDriver):
    """The rotation driver, minus a DescribeSecret per step to turn an ARN into the ARN it already is."""

    def arn(self, secret_id: str) -> str:
        return secret_id if secret_id.startswith("arn:") else super().arn(secret_id)


# --- telemetry ----------------------------------------------------------------------------------------------------


def json_lines(output: str) -> list[dict[str, Any]]:
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def failure_metrics(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """EMF documents carrying RotationFailed."""
    found = []
    for line in lines:
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            if any(metric["Name"] == m.ROTATION_FAILED for metric in directive["Metrics"]):
                found.append(line)
    return found


def failure_logs(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("message") == "rotation step failed"]


# --- tallies, printed by tests/prove/conftest.py -----------------------------------------------------------------


@dataclass
class Tally:
    scenarios: Counter[str] = field(default_factory=Counter)  # per variant
    violations: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.scenarios.values())


TALLIES: dict[str, Tally] = {"rotation": Tally(), "monitor": Tally()}
FIGURES: list[str] = []


@dataclass
class Checks:
    """Invariant checks of one scenario: every failed check is recorded, none stops the matrix."""

    scenario: str
    violations: list[str] = field(default_factory=list)

    def check(self, condition: object, message: str) -> bool:
        text = f"{self.scenario}: {message}"
        if not condition and text not in self.violations:
            self.violations.append(text)
        return bool(condition)
