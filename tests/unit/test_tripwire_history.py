"""The admin-key secret's past versions as the tripwire reads them: the ids recorded by the newest HISTORY_READS
versions that hold none of the labels keyrot reads anyway, at most that many values read, a damaged or id-less value
adding nothing; and a key they record counts as keyrot's without being remembered in the state."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from keyrot.monitor.keyrot_actors import HISTORY_READS, KeyrotActors, keyrot_history
from keyrot.monitor.state import audit_digest
from keyrot.secret_model import AdminCredentials

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/dev/openai-admin-key"


@dataclass(frozen=True)
class Version:
    version_id: str
    stages: tuple[str, ...]
    created: datetime | None
    value: str  # what GetSecretValue answers


@dataclass
class Secret:
    """The admin-key secret's versions, listed oldest first (as moto lists them), each readable by its id."""

    versions: list[Version]
    reads: list[str] = field(default_factory=list)

    def iter_versions(self, secret_id: str) -> Iterator[Mapping[str, Any]]:
        for version in self.versions:
            entry: dict[str, Any] = {"VersionId": version.version_id, "VersionStages": list(version.stages)}
            if version.created is not None:
                entry["CreatedDate"] = version.created
            yield entry

    def get_string(self, secret_id: str, *, stage: str | None, version_id: str | None = None) -> str | None:
        assert stage is None and version_id is not None  # a past version is read by its id alone
        self.reads.append(version_id)
        return next(version.value for version in self.versions if version.version_id == version_id)


def _value(kind: str, n: int) -> str:
    if kind == "damaged":
        return "{not json"
    return AdminCredentials(f"sk-admin-made-up-{n}", None if kind == "id-less" else f"key_{n}").to_json()


@st.composite
def secrets(draw: st.DrawFn) -> list[Version]:
    count = draw(st.integers(0, 16))
    versions = []
    for n in range(count):
        stages = draw(st.sampled_from([(), (), ("AWSCURRENT",), ("AWSPREVIOUS",), ("AWSPENDING",), ("KEYROT_OTHER",)]))
        created = draw(st.none() | st.integers(0, 5).map(lambda day: datetime(2026, 12, 1 + day, tzinfo=UTC)))
        kind = draw(st.sampled_from(["id", "id", "id-less", "damaged"]))
        versions.append(Version(f"v{n}", stages, created, _value(kind, n)))
    return versions


def _expected(versions: list[Version]) -> tuple[list[str], set[str]]:
    """The versions to read (newest first; later listed first on a tie) and the digests of the ids they record."""
    held = {"AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"}
    past = [(i, v) for i, v in enumerate(versions) if not set(v.stages) & held]
    past.sort(key=lambda item: (item[1].created.timestamp() if item[1].created else 0.0, item[0]), reverse=True)
    chosen = [v for _, v in past[:HISTORY_READS]]
    ids = set()
    for version in chosen:
        if version.value.startswith("{not"):
            continue
        key_id = AdminCredentials.from_json(version.value).key_id
        if key_id:
            ids.add(audit_digest(key_id))
    return [v.version_id for v in chosen], ids


@given(versions=secrets())
def test_the_history_is_the_newest_unlabelled_versions_ids_read_once_each(versions: list[Version]) -> None:
    # GIVEN any admin-key secret: labelled and unlabelled versions, with or without a creation time, some values
    # without an id or damaged
    secret = Secret(versions)
    # WHEN its history is read
    history = keyrot_history(secret, ARN)  # type: ignore[arg-type]
    # THEN exactly the newest HISTORY_READS versions without a label keyrot reads anyway were read, once each, and
    # the history is the ids they record (nothing from a damaged or id-less value)
    reads, ids = _expected(versions)
    assert secret.reads == reads and len(reads) <= HISTORY_READS
    assert history == ids


def test_a_past_key_counts_as_keyrots_but_is_not_remembered() -> None:
    # GIVEN actors that know the current key, widened with a past key from the secret's history
    actors = KeyrotActors(frozenset({audit_digest("key_now")}), complete=True)
    widened = actors.with_history(frozenset({audit_digest("key_past")}))
    # THEN the past key's actions are keyrot's; only the current key goes to the state (the secret keeps the past)
    assert widened.acted("key_past") and widened.acted("key_now") and not widened.acted("key_other")
    assert widened.remembered([]) == [audit_digest("key_now")]
