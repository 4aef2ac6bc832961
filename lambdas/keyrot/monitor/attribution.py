"""Attribute usage to key names, and find usage by keys keyrot does not manage or has retired.

What a key *is* comes from the inventory (keyrot.inventory): this module only reads the states it decided.

- current, pending, an attempt in progress, a key whose secret could not be read this run: its key name's usage;
- previous: its key name's usage, and retired-key usage once its grace period (counted from the promotion of its
  successor) is over;
- revoked, displaced (no label accounts for it, or labelled revoked while OpenAI still lists it): its key name's
  usage, and retired-key usage at once (nobody should hold it: an emergency revokes with no grace at all);
- an abandoned attempt's key, an unmanaged key, a key OpenAI does not list: unmanaged usage;
- another environment's key (declared to share the project): nobody's concern here.
"""

from __future__ import annotations

import enum
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from keyrot import metric_names as m
from keyrot.inventory import DisplacedReason, Inventory, InventoryEntry, KeyState
from keyrot.monitor.publisher import Datum
from keyrot.monitor.usage import BUCKET_SECONDS, UsageTotals


@dataclass
class KeyActivity:
    """One key id's usage in the window: total requests and the end of its latest active bucket."""

    key_id: str
    requests: int = 0
    last_active: int = 0

    def add(self, bucket_start: int, requests: int) -> None:
        self.requests += requests
        self.last_active = max(self.last_active, bucket_start + BUCKET_SECONDS)


@dataclass
class RetiredActivity(KeyActivity):
    key_name: str = ""
    role: str = "previous"  # "previous" (past its grace), "revoked" (labelled so) or "displaced"


@dataclass
class Attribution:
    datums: list[Datum] = field(default_factory=list)
    unmanaged: dict[str, KeyActivity] = field(default_factory=dict)
    retired: dict[str, RetiredActivity] = field(default_factory=dict)
    last_active: dict[str, int] = field(default_factory=dict)  # key id -> end of its latest active bucket


class Use(enum.Enum):
    """What a key's usage counts as."""

    IN_SERVICE = "in-service"  # its key name's usage, nothing more
    RETIRED = "retired"  # its key name's usage, and retired-key usage (past grace, if any)
    UNMANAGED = "unmanaged"
    IGNORED = "ignored"


def use_of(entry: InventoryEntry | None) -> Use:
    """How the usage of a key in `entry`'s state is counted (None: OpenAI does not list the key)."""
    if entry is None or entry.state is KeyState.UNMANAGED:
        return Use.UNMANAGED
    if entry.state is KeyState.OTHER_ENVIRONMENT:
        return Use.IGNORED
    if entry.state is KeyState.DISPLACED and entry.reason is DisplacedReason.ABANDONED_ATTEMPT:
        return Use.UNMANAGED  # no version ever stored it: nobody was given this key
    if entry.state in (KeyState.PREVIOUS, KeyState.REVOKED, KeyState.DISPLACED):
        return Use.RETIRED
    return Use.IN_SERVICE


def reportable_keys(inventory: Inventory) -> dict[str, InventoryEntry]:
    """The keys a run reports, by key id: unmanaged keys, and keyrot keys no label accounts for (a displaced key's
    version, an abandoned attempt). A key labelled revoked but still live is the janitor's (it revokes it again),
    attempts in progress and other environments' keys are nobody's concern. `keyrot audit` reports the same set."""
    found: dict[str, InventoryEntry] = {}
    for entry in inventory.entries:
        if not entry.key_id or not entry.listed:
            continue
        if entry.state is KeyState.UNMANAGED or (
            entry.state is KeyState.DISPLACED and entry.reason is not DisplacedReason.REVOKED_BUT_LIVE
        ):
            found.setdefault(entry.key_id, entry)
    return found


def attribute(totals: UsageTotals, inventory: Inventory, *, environment: str, grace_period_seconds: int) -> Attribution:
    """Per key name and minute: usage datums. Per environment and minute: unmanaged and retired requests."""
    result = Attribution()
    per_key_name: dict[tuple[int, str], Counter[str]] = defaultdict(Counter)
    unmanaged_requests: Counter[int] = Counter()
    retired_requests: Counter[int] = Counter()
    for (bucket_start, key_id), counts in totals.items():
        if key_id is None:
            continue  # usage not made with an API key (OpenAI leaves api_key_id null): nothing to attribute
        requests = counts.get(m.REQUESTS, 0)
        if requests:
            result.last_active[key_id] = max(result.last_active.get(key_id, 0), bucket_start + BUCKET_SECONDS)
        entry = inventory.by_key_id(key_id)
        use = use_of(entry)
        if use is Use.IGNORED:
            continue
        if use is Use.UNMANAGED or entry is None or not entry.key_name:
            result.unmanaged.setdefault(key_id, KeyActivity(key_id)).add(bucket_start, requests)
            unmanaged_requests[bucket_start] += requests
            continue
        per_key_name[(bucket_start, entry.key_name)].update(counts)
        if use is Use.RETIRED and requests and bucket_start >= _retired_since(entry, grace_period_seconds):
            role = _role(entry)
            activity = result.retired.setdefault(key_id, RetiredActivity(key_id, key_name=entry.key_name, role=role))
            activity.add(bucket_start, requests)
            retired_requests[bucket_start] += requests
    for (bucket_start, key_name), counts in per_key_name.items():
        dims = m.key_dimensions(environment, key_name)
        for metric in m.PER_KEY_USAGE_METRICS:
            if counts.get(metric):
                result.datums.append(Datum.of(metric, dims, bucket_start, counts[metric]))
    env_dims = m.environment_dimensions(environment)
    for bucket_start, requests in unmanaged_requests.items():
        if requests:
            result.datums.append(Datum.of(m.UNMANAGED_KEY_REQUESTS, env_dims, bucket_start, requests))
    for bucket_start, requests in retired_requests.items():
        result.datums.append(Datum.of(m.RETIRED_KEY_REQUESTS, env_dims, bucket_start, requests))
    return result


def _retired_since(entry: InventoryEntry, grace_period_seconds: int) -> float:
    """From when a retired key's use is news: a previous key's grace runs from its successor's promotion; a revoked
    or displaced key has no grace left (it may have been revoked at the rotation itself: an emergency)."""
    if entry.retired_at is None:
        return 0
    grace = grace_period_seconds if entry.state is KeyState.PREVIOUS else 0
    return entry.retired_at.timestamp() + grace


def _role(entry: InventoryEntry) -> str:
    if entry.state is KeyState.REVOKED or entry.reason is DisplacedReason.REVOKED_BUT_LIVE:
        return "revoked"
    return "displaced" if entry.state is KeyState.DISPLACED else "previous"
