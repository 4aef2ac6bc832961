"""Attribute usage to key names, and find usage by keys keyrot does not manage or has retired."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from keyrot import metric_names as m
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


def is_foreign(key: ProjectApiKey | None, environment: str) -> bool:
    """A key minted by keyrot for another environment sharing this project: not ours to report."""
    if key is None or key.owner_type != "service_account" or not key.owner_name:
        return False
    name = ServiceAccountName.parse(key.owner_name)
    return name is not None and name.environment != environment


def attribute(
    totals: UsageTotals,
    ledger: Ledger,
    inventory: Mapping[str, ProjectApiKey],
    *,
    environment: str,
    grace_period_seconds: int,
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
            if is_foreign(inventory.get(key_id), environment):
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
