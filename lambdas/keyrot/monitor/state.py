"""The monitor's durable state in one SSM parameter: the usage watermark, the publish intent and notification dedup.

The watermark only moves after the usage it covers is published. An intent is written before publishing, so a
run that dies in between can tell, next time, which of its PutMetricData calls landed (see publisher.py).

Size: the parameter uses SSM's Intelligent-Tiering, so it stays a free standard parameter up to 4 KB and becomes an
advanced one (8 KB) only while it needs to. The intent is bounded by the publisher (run.INTENT_MAX_CHARS); the
notification dedup entries are short digests, and when the state would still not fit, those closest to expiry go
first (at worst a notification repeats). Nothing here ever fails a run for size.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from keyrot.aws.errors import aws_errors, error_code
from keyrot.constants import STATE_PARAMETER_PLACEHOLDER
from keyrot.errors import AwsCallError, KeyrotError

STATE_VERSION = 1
STATE_MAX_CHARS = 8192  # SSM's advanced-tier limit; Intelligent-Tiering moves the parameter there only when needed
PARAMETER_TIER = "Intelligent-Tiering"


class MonitorStateError(KeyrotError):
    """The state parameter holds something that is not keyrot monitor state. It is left untouched."""


@dataclass
class PublishIntent:
    """Usage for [start, end) is being published in len(boundaries) PutMetricData calls, numbered from first_marker.

    boundaries[i] is the sort key (timestamp, key name, metric) of call i's first datum.
    """

    start: int
    end: int
    first_marker: int
    boundaries: list[list[Any]]
    created_at: int

    @property
    def last_marker(self) -> int:
        return self.first_marker + len(self.boundaries) - 1


@dataclass
class Lease:
    """The run that owns the state until `until`: overlapping runs would otherwise publish the same usage."""

    owner: str
    until: int


@dataclass
class MonitorState:
    watermark: int  # usage buckets before this (Unix seconds) are published
    marker: int = 0  # the last publish marker committed
    intent: PublishIntent | None = None
    notified: dict[str, int] = field(default_factory=dict)  # dedup key -> do not notify again before this time
    lease: Lease | None = None

    def leased_to_another(self, run_id: str, now: int) -> bool:
        return self.lease is not None and self.lease.owner != run_id and self.lease.until > now

    def to_json(self) -> str:
        """The state as stored; dedup entries closest to expiry are dropped if it would not fit the parameter."""
        text = self._serialize()
        if len(text) > STATE_MAX_CHARS:
            for key, _ in sorted(self.notified.items(), key=lambda item: item[1]):
                del self.notified[key]
                text = self._serialize()
                if len(text) <= STATE_MAX_CHARS:
                    break
        if len(text) > STATE_MAX_CHARS:
            raise MonitorStateError(f"monitor state is {len(text)} characters, over SSM's {STATE_MAX_CHARS}")
        return text

    def _serialize(self) -> str:
        payload = {"version": STATE_VERSION, **asdict(self)}
        return json.dumps(payload, separators=(",", ":"), sort_keys=True)

    def recently_notified(self, dedup_key: str, now: int) -> bool:
        return self.notified.get(dedup_digest(dedup_key), 0) > now

    def mark_notified(self, dedup_key: str, until: int) -> None:
        self.notified[dedup_digest(dedup_key)] = until

    @classmethod
    def from_json(cls, text: str, name: str) -> MonitorState:
        if len(text) > STATE_MAX_CHARS:
            raise MonitorStateError(f"SSM parameter {name} holds {len(text)} characters: not keyrot monitor state")
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):
            raise MonitorStateError(
                f"SSM parameter {name} is not JSON; fix or delete it (docs/runbook.md#monitor-state)"
            ) from None
        if not isinstance(payload, dict) or payload.get("version") != STATE_VERSION:
            raise MonitorStateError(f"SSM parameter {name} is not keyrot monitor state version {STATE_VERSION}")
        try:
            intent = payload.get("intent")
            state = cls(
                watermark=_int(payload["watermark"]),
                marker=_int(payload.get("marker", 0)),
                intent=PublishIntent(
                    start=_int(intent["start"]),
                    end=_int(intent["end"]),
                    first_marker=_int(intent["first_marker"]),
                    boundaries=[_boundary(b) for b in _list(intent["boundaries"])],
                    created_at=_int(intent["created_at"]),
                )
                if intent
                else None,
                notified={str(k): _int(v) for k, v in (payload.get("notified") or {}).items()},
                lease=Lease(str(payload["lease"]["owner"]), _int(payload["lease"]["until"]))
                if payload.get("lease")
                else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError):  # AttributeError: a non-object "notified"
            raise MonitorStateError(
                f"SSM parameter {name} has a malformed field; fix or delete it (docs/runbook.md#monitor-state)"
            ) from None
        if state.watermark % 60:
            raise MonitorStateError(f"SSM parameter {name} watermark {state.watermark} is not minute-aligned")
        return state

    def prune_notified(self, now: int) -> None:
        self.notified = {key: until for key, until in self.notified.items() if until > now}


def dedup_digest(dedup_key: str) -> str:
    """What the state keeps of a dedup key: 12 hex characters of its SHA-256 (short, and no key ids in SSM)."""
    return hashlib.sha256(dedup_key.encode()).hexdigest()[:12]


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return value


def _boundary(value: Any) -> list[Any]:
    """A batch boundary: the sort key [timestamp, key name, metric] of the batch's first datum."""
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[1], str) and isinstance(value[2], str)):
        raise TypeError("not a batch boundary")
    return [_int(value[0]), value[1], value[2]]


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("not an integer")
    return value


class StateStore:
    """Reads and writes the state parameter."""

    def __init__(self, ssm: Any, name: str) -> None:
        self._ssm = ssm
        self.name = name

    def load(self) -> MonitorState | None:
        """The stored state, or None on the very first run (no parameter, or the infrastructure's placeholder)."""
        try:
            with aws_errors("GetParameter"):
                response = self._ssm.get_parameter(Name=self.name)
        except AwsCallError as exc:
            if isinstance(exc.__cause__, ClientError) and error_code(exc.__cause__) == "ParameterNotFound":
                return None
            raise
        value = response["Parameter"]["Value"]
        if value == STATE_PARAMETER_PLACEHOLDER:
            return None
        return MonitorState.from_json(value, self.name)

    def save(self, state: MonitorState) -> None:
        with aws_errors("PutParameter"):
            self._ssm.put_parameter(
                Name=self.name, Value=state.to_json(), Type="String", Overwrite=True, Tier=PARAMETER_TIER
            )
