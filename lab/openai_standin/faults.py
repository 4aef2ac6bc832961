"""Fault injection for the stand-in: per endpoint and per call number, with OpenAI-shaped error bodies."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Fault:
    """What to do to matching calls.

    endpoint: endpoint name (see OpenAIStandIn.endpoints; "unknown" for URLs it does not route) or None for every
        endpoint. A name the stand-in does not route is refused when the fault is added: it would never fire.
    calls: 1-based numbers of the matching calls to hit (per endpoint); None hits every call.
    status: HTTP status to answer with; None lets the call through (use with latency_seconds).
    after_effect: perform the real operation first, then answer with the fault (a lost success).
    drop_connection: close the socket without an answer.
    non_json: answer with an HTML body instead of JSON.
    """

    endpoint: str | None = None
    calls: Iterable[int] | None = None
    status: int | None = 500
    code: str | None = None
    error_type: str = "server_error"
    message: str = "The server had an error while processing your request."
    retry_after: float | None = None
    latency_seconds: float = 0.0
    drop_connection: bool = False
    non_json: bool = False
    after_effect: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.calls = frozenset(self.calls) if self.calls is not None else None

    @property
    def label(self) -> str:
        if self.drop_connection:
            return "dropped connection"
        if self.non_json:
            return f"HTTP {self.status} non-JSON"
        if self.status is None:
            return f"latency {self.latency_seconds}s"
        return f"HTTP {self.status}{f' {self.code}' if self.code else ''}"


def rate_limited(
    endpoint: str | None = None, calls: Iterable[int] | None = None, retry_after: float | None = 1
) -> Fault:
    return Fault(
        endpoint,
        calls,
        status=429,
        code="rate_limit_exceeded",
        error_type="requests",
        message="Rate limit reached for requests",
        retry_after=retry_after,
    )


def insufficient_quota(endpoint: str | None = None, calls: Iterable[int] | None = None) -> Fault:
    return Fault(
        endpoint,
        calls,
        status=429,
        code="insufficient_quota",
        error_type="insufficient_quota",
        message="You exceeded your current quota, please check your plan and billing details.",
    )


def server_error(endpoint: str | None = None, calls: Iterable[int] | None = None, status: int = 500) -> Fault:
    message = "Slow Down" if status == 503 else "The server had an error while processing your request."
    return Fault(endpoint, calls, status=status, message=message)


class FaultPlan:
    """The faults in force and a per-endpoint call counter. Thread-safe."""

    def __init__(self, known_endpoints: Iterable[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._counts: dict[str, int] = defaultdict(int)
        self._known = frozenset([*known_endpoints, "unknown"]) if known_endpoints is not None else None
        self.default_latency_seconds = 0.0

    def add(self, fault: Fault) -> Fault:
        if self._known is not None and fault.endpoint is not None and fault.endpoint not in self._known:
            raise ValueError(
                f"no stand-in endpoint is named {fault.endpoint!r}; expected one of {', '.join(sorted(self._known))}"
            )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._counts.clear()

    def next_call(self, endpoint: str) -> tuple[int, Fault | None]:
        """Count a call to `endpoint` and return its number and the fault that applies to it, if any."""
        with self._lock:
            self._counts[endpoint] += 1
            number = self._counts[endpoint]
            for fault in self._faults:
                if fault.endpoint not in (None, endpoint):
                    continue
                if fault.calls is None or number in fault.calls:
                    return number, fault
            return number, None

    def count(self, endpoint: str) -> int:
        with self._lock:
            return self._counts[endpoint]
