"""The project's keys as the monitor last knew them, kept in memory between runs of one Lambda container.

Listing a project's keys costs one OpenAI call per 100 keys. The monitor lists them in full only when it has to (the
first run of a container, a lost audit cursor, once a day) and otherwise brings this copy up to date from the audit
log: each `api_key.*` or `service_account.*` event names what to read again (`refresh`: one GET per key) or drop.

A copy belongs to one line of audit-log reads: its `generation` is written in the monitor state with the cursor, and a
run trusts the copy only when the two match. So a copy can be ahead of the cursor (a run refreshed keys, then failed
before saving the cursor: the next run applies those events again, which changes nothing, since a refresh reads what
OpenAI says now), never behind it.

The state parameter (4-8 KB) cannot hold the keys themselves: a key keyrot minted takes about 320 characters as
listed and still about 150 in a compact form (id, owner id, the account's keyrot name, times), so the 2-3 KB the state
can spare beside a publish intent would hold about 20 keys. See docs/architecture.md#audit-log for the choice and
what a cold container costs.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from keyrot.openai_admin import NotFoundError, OpenAIAdminClient, ProjectApiKey

# Containers rarely serve more than one environment; tests make many.
MAX_COPIES = 16
_copies: OrderedDict[tuple[str, str], KeyCopy] = OrderedDict()


@dataclass
class KeyCopy:
    """One project's keys by id, the line of cursor reads it goes with, and ids known not to be in the project."""

    project_id: str
    generation: str
    keys: dict[str, ProjectApiKey]
    absent: set[str] = field(default_factory=set)  # read and not found: not read again until the next listing
    calls: int = 0  # OpenAI calls this copy made (refreshes) since it was taken from the cache

    @classmethod
    def listed(cls, project_id: str, keys: Iterable[ProjectApiKey]) -> KeyCopy:
        """A copy from a full listing: a new generation."""
        return cls(project_id, secrets.token_hex(6), {key.id: key for key in keys})

    def refresh(self, admin: OpenAIAdminClient, key_id: str) -> ProjectApiKey | None:
        """Read `key_id` again: the key as the project has it now (kept), or None when the project does not have it
        (dropped, and remembered as absent). Raises the client's other errors."""
        self.calls += 1
        try:
            key = admin.get_project_api_key(self.project_id, key_id)
        except NotFoundError:
            self.keys.pop(key_id, None)
            self.absent.add(key_id)
            return None
        self.keys[key.id] = key
        self.absent.discard(key.id)
        return key

    def drop(self, key_id: str) -> None:
        self.keys.pop(key_id, None)
        self.absent.add(key_id)

    def drop_account(self, service_account_id: str) -> list[str]:
        """Drop the keys of a deleted service account; returns their ids."""
        gone = [key.id for key in self.keys.values() if key.owner_id == service_account_id]
        for key_id in gone:
            self.drop(key_id)
        return gone

    def of_account(self, service_account_id: str) -> list[ProjectApiKey]:
        return [key for key in self.keys.values() if key.owner_id == service_account_id]


def cached(scope: str, project_id: str, generation: str | None) -> KeyCopy | None:
    """The copy of `project_id` kept for `scope` (the state parameter) when it is of `generation`, else None."""
    copy = _copies.get((scope, project_id))
    if copy is None or generation is None or copy.generation != generation:
        return None
    copy.calls = 0
    return copy


def keep(scope: str, copy: KeyCopy) -> None:
    """Keep `copy` for the next run of this container."""
    _copies[(scope, copy.project_id)] = copy
    _copies.move_to_end((scope, copy.project_id))
    while len(_copies) > MAX_COPIES:
        _copies.popitem(last=False)


def forget(scope: str, project_id: str) -> None:
    _copies.pop((scope, project_id), None)


def clear_cache() -> None:
    """Forget every copy (a new Lambda container; tests and benchmarks simulating one)."""
    _copies.clear()
