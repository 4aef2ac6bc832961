"""The monitor's durable state in one SSM parameter: the usage watermark, the publish intent and notification dedup.

The watermark only moves after the usage it covers is published. An intent is written before publishing, so a
run that dies in between can tell, next time, which of its PutMetricData calls landed (see publisher.py).

One run at a time: a run takes the state with a compare-and-swap built on the parameter's versions (SSM has no
conditional put). It reads the latest version L, and writes the state with its lease, marked `claim: L`. SSM numbers
versions one by one, atomically: the claim won if it became version L + 1, i.e. nothing was written between the read
and the claim. A claim that became any other version lost; its run does nothing more, and every reader skips it (and
any other losing claim) by reading the versions before it, so a losing claim never hides or overwrites the winner's
state. Only the run holding the lease writes otherwise. See `StateStore.read` and `StateStore.claim`.

Poison: a usage bucket whose results keep failing the checks (a null count, say) would hold the watermark back for
good. `suspect` counts a bucket's consecutive failures; after POISON_STRIKES the bucket (kind and minute) is
`set_aside` with what was wrong, and the rest is published. Set-aside buckets are replayed or dropped on demand (the
handler's `setAside` input, docs/runbook.md#usage-bucket-set-aside) and forgotten once CloudWatch would refuse them.

The audit log (monitor/audit_watch.py): `audit` holds where each audit-log stream was read up to (`AuditStream`: the
newest `effective_at` delivered, the lookback window re-listed next time, and 10-hex-character digests of the entries
already delivered in it, at most AUDIT_SEEN_MAX), when the project's keys were last listed in full, which in-memory
inventory goes with this cursor, and two tell-once flags. A stream advances only once the notifications for the
events it covers went out (or were already sent).

Size: the parameter uses SSM's Intelligent-Tiering, so it stays a free standard parameter up to 4 KB and becomes an
advanced one (8 KB) only while it needs to. The intent is bounded by the publisher (run.INTENT_MAX_CHARS); the
notification dedup entries are short digests, and when the state would still not fit, those closest to expiry go
first (at worst a notification repeats). Nothing here ever fails a run for size.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from keyrot.aws.errors import aws_errors, error_code
from keyrot.constants import STATE_PARAMETER_PLACEHOLDER
from keyrot.errors import AwsCallError, KeyrotError
from keyrot.monitor.usage import KIND_FIELDS

STATE_VERSION = 1
# A bucket failing this many runs in a row is set aside; at most MAX_SET_ASIDE are, each problem at most this long.
POISON_STRIKES = 3
MAX_SET_ASIDE = 8
PROBLEM_MAX_CHARS = 160
# How many losing claims a read skips at most (each is an overlapping run that lost the state at the same moment).
MAX_LOSING_CLAIMS = 20
# The audit cursor (AuditState): digests of delivered entry ids, kept per stream (more only for one second's events).
AUDIT_DIGEST_CHARS = 10
AUDIT_SEEN_MAX = 40
AUDIT_SEEN_HARD_MAX = 60
AUDIT_WINDOW_MAX = 86400
AUDIT_KEYROT_IDS_MAX = 6
_DIGEST = re.compile(rf"^[0-9a-f]{{{AUDIT_DIGEST_CHARS}}}$")
_DIGEST_ANY = re.compile(r"^[0-9a-f]{8,32}$")
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
    skipped: list[list[Any]] = field(default_factory=list)  # [kind, bucket] set aside: not part of this publish
    replay: str | None = None  # the usage kind of a set-aside bucket being replayed (the watermark stays put)

    @property
    def last_marker(self) -> int:
        return self.first_marker + len(self.boundaries) - 1

    @property
    def skip(self) -> set[tuple[str, int]]:
        return {(kind, bucket) for kind, bucket in self.skipped}


@dataclass
class SetAside:
    """A usage bucket (one kind, one minute) left unpublished after failing POISON_STRIKES runs in a row."""

    kind: str
    bucket: int
    problem: str  # what was wrong, as the check said it (never a value read from the answer)


@dataclass
class Lease:
    """The run that owns the state until `until`: overlapping runs would otherwise publish the same usage."""

    owner: str
    until: int


@dataclass
class AuditStream:
    """Where one audit-log stream was read up to: the newest `effective_at` delivered, how many seconds before it the
    next read starts (re-listing late arrivals), and digests (`dedup_digest`-style, AUDIT_DIGEST_CHARS hex) of the
    entries delivered within that window, so none is delivered twice."""

    at: int
    window: int = 0
    seen: list[str] = field(default_factory=list)


@dataclass
class AuditState:
    """The monitor's reading of OpenAI's audit log (see monitor/audit_watch.py)."""

    keys: AuditStream | None = None  # api_key.* and service_account.* events (None: never read, or lost)
    admin: AuditStream | None = None  # tenant-scoped admin-key events
    listed_at: int | None = None  # when the project's keys were last listed in full
    generation: str | None = None  # the in-memory key inventory that goes with these streams (key_cache.py)
    off_since: int | None = None  # the audit log was found unreadable at this time; on-call was told (once)
    id_unknown: bool = False  # on-call was told keyrot's own admin key cannot be recognised (once)
    keyrot_ids: list[str] = field(default_factory=list)  # digests of admin key ids seen as keyrot's, newest last


@dataclass
class MonitorState:
    watermark: int  # usage buckets before this (Unix seconds) are published
    marker: int = 0  # the last publish marker committed
    intent: PublishIntent | None = None
    notified: dict[str, int] = field(default_factory=dict)  # dedup key -> do not notify again before this time
    lease: Lease | None = None
    claim: int | None = None  # on a run's claim only: the latest version it read (see the module docstring)
    suspect: list[Any] | None = None  # [kind, bucket, consecutive failures] of the bucket that failed last
    set_aside: list[SetAside] = field(default_factory=list)
    audit: AuditState | None = None  # the audit log's cursor (None: not read yet, or lost: the next read starts anew)

    def set_aside_in(self, start: int, end: int) -> list[list[Any]]:
        """[kind, bucket] of the set-aside buckets in [start, end)."""
        return [[entry.kind, entry.bucket] for entry in self.set_aside if start <= entry.bucket < end]

    def strike(self, kind: str, bucket: int) -> int:
        """Count one more consecutive failure of (kind, bucket); returns the count."""
        strikes = self.suspect[2] + 1 if self.suspect and self.suspect[:2] == [kind, bucket] else 1
        self.suspect = [kind, bucket, strikes]
        return strikes

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
                    skipped=[_kind_bucket(item) for item in _list(intent.get("skipped") or [])],
                    replay=_kind(intent["replay"]) if intent.get("replay") is not None else None,
                )
                if intent
                else None,
                notified={str(k): _int(v) for k, v in (payload.get("notified") or {}).items()},
                lease=Lease(str(payload["lease"]["owner"]), _int(payload["lease"]["until"]))
                if payload.get("lease")
                else None,
                claim=_int(payload["claim"]) if payload.get("claim") is not None else None,
                suspect=[*_kind_bucket(payload["suspect"][:2]), _int(payload["suspect"][2])]
                if payload.get("suspect") is not None
                else None,
                set_aside=[_set_aside(item) for item in _list(payload.get("set_aside") or [])],
                audit=_audit(payload["audit"]) if payload.get("audit") is not None else None,
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


def _audit(item: Any) -> AuditState:
    """The audit field as a run wrote it; anything else is a TypeError/ValueError (the state is then refused)."""
    if not isinstance(item, dict):
        raise TypeError("audit is not an object")
    return AuditState(
        keys=_stream(item["keys"]) if item.get("keys") is not None else None,
        admin=_stream(item["admin"]) if item.get("admin") is not None else None,
        listed_at=_int(item["listed_at"]) if item.get("listed_at") is not None else None,
        generation=_token(item["generation"]) if item.get("generation") is not None else None,
        off_since=_int(item["off_since"]) if item.get("off_since") is not None else None,
        id_unknown=_bool(item.get("id_unknown", False)),
        keyrot_ids=_digests(item.get("keyrot_ids") or [], AUDIT_KEYROT_IDS_MAX),
    )


def _stream(item: Any) -> AuditStream:
    if not isinstance(item, dict):
        raise TypeError("audit stream is not an object")
    at, window = _int(item["at"]), _int(item.get("window", 0))
    if at < 0 or not 0 <= window <= AUDIT_WINDOW_MAX:
        raise ValueError("audit stream time out of range")
    return AuditStream(at, window, _digests(item.get("seen") or [], AUDIT_SEEN_HARD_MAX))


def _digests(value: Any, limit: int) -> list[str]:
    items = _list(value)
    if len(items) > limit or not all(isinstance(d, str) and _DIGEST.fullmatch(d) for d in items):
        raise ValueError("not a short list of digests")
    return list(items)


def _token(value: Any) -> str:
    if not isinstance(value, str) or not _DIGEST_ANY.fullmatch(value):
        raise ValueError("not a generation token")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("not a boolean")
    return value


def audit_digest(value: str) -> str:
    """What the audit cursor keeps of an entry id or an admin key id: AUDIT_DIGEST_CHARS hex of its SHA-256."""
    return hashlib.sha256(value.encode()).hexdigest()[:AUDIT_DIGEST_CHARS]


def _set_aside(item: Any) -> SetAside:
    kind, bucket = _kind_bucket([item["kind"], item["bucket"]])
    return SetAside(kind, bucket, _str(item["problem"]))


def _kind_bucket(value: Any) -> list[Any]:
    """A [kind, bucket] pair: a usage kind and a minute-aligned bucket start."""
    if not (isinstance(value, list | tuple) and len(value) == 2):
        raise TypeError("not a [kind, bucket] pair")
    bucket = _int(value[1])
    if bucket % 60:
        raise ValueError("bucket not minute-aligned")
    return [_kind(value[0]), bucket]


def _kind(value: Any) -> str:
    if value not in KIND_FIELDS:
        raise ValueError("not a usage kind")
    return str(value)


def _str(value: Any) -> str:
    if not isinstance(value, str) or len(value) > PROBLEM_MAX_CHARS:
        raise ValueError("not a short string")
    return value


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


@dataclass(frozen=True)
class Snapshot:
    """What a read found: the state in force (None on the first run) and the parameter's latest version (0: none)."""

    state: MonitorState | None
    latest: int


class StateStore:
    """Reads and writes the state parameter; claims it for one run at a time."""

    def __init__(self, ssm: Any, name: str) -> None:
        self._ssm = ssm
        self.name = name

    def load(self) -> MonitorState | None:
        """The state in force, or None on the very first run (no parameter, or the infrastructure's placeholder)."""
        return self.read().state

    def read(self) -> Snapshot:
        """The state in force and the latest version: the latest value, unless it is a losing claim, in which case
        the versions before it are read until one is not."""
        found = self._get(self.name)
        if found is None:
            return Snapshot(None, 0)
        text, latest = found
        version = latest
        for _ in range(MAX_LOSING_CLAIMS + 1):
            state = None if text == STATE_PARAMETER_PLACEHOLDER else MonitorState.from_json(text, self.name)
            if state is None or state.claim is None or version == state.claim + 1:
                return Snapshot(replace(state, claim=None) if state else None, latest)
            version -= 1
            earlier = self._get(f"{self.name}:{version}")
            if earlier is None:
                break
            text = earlier[0]
        raise MonitorStateError(
            f"SSM parameter {self.name}: no state in force within {MAX_LOSING_CLAIMS} versions of claims that lost"
        )

    def claim(self, state: MonitorState, based_on: int) -> bool:
        """Write `state` (holding this run's lease) as a claim on version `based_on`, the latest this run read.

        True when the claim won: it became version based_on + 1 (or that version is this same claim, written twice
        by a retry whose first answer was lost). False when another write came first: the run must not act.
        """
        state.claim = based_on
        try:
            version = self.save(state)
        finally:
            state.claim = None
        if version == based_on + 1:
            return True
        found = self._get(f"{self.name}:{based_on + 1}")
        if found is None or found[0] == STATE_PARAMETER_PLACEHOLDER:
            return False
        first = MonitorState.from_json(found[0], self.name)
        mine = state.lease is not None and first.lease is not None and first.lease.owner == state.lease.owner
        return mine and first.claim == based_on

    def save(self, state: MonitorState) -> int:
        """Write `state`; returns the version SSM gave it."""
        with aws_errors("PutParameter"):
            response = self._ssm.put_parameter(
                Name=self.name, Value=state.to_json(), Type="String", Overwrite=True, Tier=PARAMETER_TIER
            )
        version = response.get("Version")
        return version if isinstance(version, int) and not isinstance(version, bool) else 0

    def _get(self, name: str) -> tuple[str, int] | None:
        """(value, version) of `name` (a parameter, or parameter:version), or None when there is none."""
        try:
            with aws_errors("GetParameter"):
                response = self._ssm.get_parameter(Name=name)
        except AwsCallError as exc:
            if isinstance(exc.__cause__, ClientError) and error_code(exc.__cause__) in (
                "ParameterNotFound",
                "ParameterVersionNotFound",
            ):
                return None
            raise
        parameter = response["Parameter"]
        version = parameter.get("Version")
        return parameter["Value"], version if isinstance(version, int) and not isinstance(version, bool) else 0
