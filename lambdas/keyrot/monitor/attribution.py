"""Attribute usage to key names, and find usage by keys keyrot does not manage or has retired.

What a key *is* comes from the inventory (keyrot.inventory): `is_foreign` and `reportable_keys` only ask it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from keyrot import metric_names as m
from keyrot.inventory import DisplacedReason, Inventory, InventoryEntry, KeyState
from keyrot.monitor.ledger import KeyRole, Ledger
from keyrot.monitor.publisher import Datum
from keyrot.monitor.usage import BUCKET_SECONDS, UsageTotals
from keyrot.openai_admin import ProjectApiKey
from keyrot.rotation.naming import ServiceAccountName


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
    role: KeyRole = KeyRole.PREVIOUS


@dataclass
class Attribution:
    datums: list[Datum] = field(default_factory=list)
    unmanaged: dict[str, KeyActivity] = field(default_factory=dict)
    retired: dict[str, RetiredActivity] = field(default_factory=dict)
    last_active: dict[str, int] = field(default_factory=dict)  # key id -> end of its latest active bucket


def is_foreign(
    key: ProjectApiKey | None, environment: str, shared_environments: Collection[str] | None = None
) -> bool:
    """A key minted by keyrot for another environment declared to share this project: not ours to report.

    `shared_environments` None (an older deployment that declares none): any other keyrot environment counts.
    """
    if key is None or key.owner_type != "service_account" or not key.owner_name:
        return False
    name = ServiceAccountName.parse(key.owner_name)
    if name is None or name.environment == environment:
        return False
    return shared_environments is None or name.environment in shared_environments


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


def attribute(
    totals: UsageTotals,
    ledger: Ledger,
    inventory: Mapping[str, ProjectApiKey],
    *,
    environment: str,
    grace_period_seconds: int,
    shared_environments: Collection[str] | None = None,
) -> Attribution:
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
        entry = ledger.lookup(key_id)
        if entry is None:
            if is_foreign(inventory.get(key_id), environment, shared_environments):
                continue
            result.unmanaged.setdefault(key_id, KeyActivity(key_id)).add(bucket_start, requests)
            unmanaged_requests[bucket_start] += requests
            continue
        per_key_name[(bucket_start, entry.key_name)].update(counts)
        if entry.role in (KeyRole.PREVIOUS, KeyRole.REVOKED) and requests:
            # A previous key should be idle once its grace period is over. A revoked key has no grace left: it may
            # have been revoked at the rotation itself (emergency, the leaked-key path), so any use since is news.
            grace = grace_period_seconds if entry.role is KeyRole.PREVIOUS else 0
            retired_since = entry.retired_at.timestamp() + grace if entry.retired_at else 0
            if bucket_start >= retired_since:
                activity = result.retired.setdefault(
                    key_id, RetiredActivity(key_id, key_name=entry.key_name, role=entry.role)
                )
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
