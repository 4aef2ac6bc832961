"""Garbled Usage API answers against a real monitor run: all or nothing.

A run either publishes exactly what the pages it was served say (every bucket once), or fails with keyrot's typed
error having published no usage, kept its watermark and released its lease; the next clean run then counts every
bucket exactly once.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from keyrot import metric_names as m
from keyrot.errors import KeyrotError
from keyrot.monitor.run import run_monitor
from keyrot.monitor.state import (
    AUDIT_DIGEST_CHARS,
    AUDIT_KEYROT_IDS_MAX,
    AUDIT_SEEN_HARD_MAX,
    AUDIT_WINDOW_MAX,
    MAX_SET_ASIDE,
    PROBLEM_MAX_CHARS,
    AuditState,
    AuditStream,
    Lease,
    MonitorState,
    MonitorStateError,
    PublishIntent,
    SetAside,
)
from keyrot.monitor.usage import KIND_FIELDS
from lab.monitor_scenario import MonitorWorld
from lab.openai_standin import ManualClock, OpenAIStandIn
from tests.prove.monitor_lab import KEY_NAME, MonitorLab, Prepared, expected_sums, published_sums
from tests.prove.strategies import counts, json_values, unicode_text

STATEFUL = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclasses.dataclass(frozen=True)
class Mutation:
    """One change to a usage page: where (which bucket and result) and what."""

    what: str
    bucket: int = 0
    field: str = "num_model_requests"
    value: Any = None

    def apply(self, page: dict[str, Any]) -> bytes:
        page = json.loads(json.dumps(page))
        buckets = page["data"]
        index = self.bucket % len(buckets) if buckets else 0
        with_results = [b for b in buckets if b["results"]] or buckets
        if self.what == "extra fields":
            page["unexpected"] = self.value
            for bucket in buckets:
                bucket["unexpected"] = self.value
                for result in bucket["results"]:
                    result["unexpected"] = self.value
        elif self.what == "drop bucket" and buckets:
            del buckets[index]
        elif self.what == "repeat bucket" and buckets:
            buckets.append(buckets[index])
        elif self.what == "bucket start" and buckets:
            buckets[index]["start_time"] = self.value
        elif self.what == "result field" and with_results and with_results[0]["results"]:
            with_results[self.bucket % len(with_results)]["results"][0][self.field] = self.value
        elif self.what == "data":
            page["data"] = self.value
        elif self.what == "body":
            page = self.value
        elif self.what == "not json":
            return b"<html><body>upstream timed out</body></html>"
        elif self.what == "truncated":
            text = json.dumps(page).encode()
            return text[: len(text) // 2]
        return json.dumps(page, allow_nan=True).encode()


mutations = st.one_of(
    st.builds(Mutation, st.just("extra fields"), value=json_values),
    st.builds(Mutation, st.sampled_from(["drop bucket", "repeat bucket"]), st.integers(0, 20)),
    st.builds(Mutation, st.just("bucket start"), st.integers(0, 20), value=st.one_of(counts, st.integers(0, 2**40))),
    st.builds(
        Mutation,
        st.just("result field"),
        st.integers(0, 3),
        st.sampled_from(["num_model_requests", "input_tokens", "api_key_id", "object"]),
        st.one_of(counts, unicode_text),
    ),
    st.builds(Mutation, st.sampled_from(["data", "body"]), value=json_values),
    st.builds(Mutation, st.sampled_from(["not json", "truncated"])),
)


class RewritingSession(requests.Session):
    """Usage API answers are rewritten; the last body served for each usage kind is kept."""

    def __init__(self, mutation: Mutation, served: dict[str, bytes]) -> None:
        super().__init__()
        self._mutation, self._served = mutation, served

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        path = str(url).split("?", 1)[0]
        if "/organization/usage/" in path and response.status_code == 200:
            response._content = self._mutation.apply(response.json())
            # the run's own read comes first; a later read (the janitor's quiet window) serves another window
            self._served.setdefault(path.rsplit("/", 1)[-1], response._content)
        return response


def _requests_served(served: dict[str, bytes], prepared: Prepared) -> dict[int, float]:
    """Requests of the managed key name per minute, as the served pages say."""
    managed = {prepared.current.key_id, prepared.previous.key_id}
    totals: Counter[int] = Counter()
    for body in served.values():
        for bucket in json.loads(body)["data"]:
            for result in bucket["results"]:
                if result.get("api_key_id") in managed:
                    totals[bucket["start_time"]] += result["num_model_requests"]
    return {bucket: float(value) for bucket, value in totals.items() if value}


@pytest.fixture
def lab(aws: None) -> Iterator[MonitorLab]:
    clock = ManualClock(0)
    with OpenAIStandIn(clock=clock) as openai:
        yield MonitorLab(openai, clock)


def _run(world: MonitorWorld, session: Callable[[], requests.Session]) -> Any:
    rotation = dataclasses.replace(world.rotation, session_factory=session)
    return run_monitor(dataclasses.replace(world, rotation=rotation).dependencies())


@STATEFUL
@given(mutation=mutations)
def test_garbled_usage_is_published_all_or_nothing(lab: MonitorLab, mutation: Mutation) -> None:
    # GIVEN usage in three minutes, and a Usage API whose answers come back changed
    prepared = lab.prepare()
    world = prepared.world
    served: dict[str, bytes] = {}
    # WHEN the monitor runs
    try:
        _run(world, lambda: RewritingSession(mutation, served))
    except KeyrotError as exc:
        event(f"{mutation.what}: {type(exc).__name__}")
        # THEN nothing of the window was published, and the state only lost its lease
        assert published_sums(world) == ({}, {}, {})
        state = world.state() or {}
        assert (state.get("watermark"), state.get("intent"), state.get("lease")) == (world.start, None, None)
        wanted = expected_sums(world)[0]  # the next clean run publishes the real usage
    else:
        event(f"{mutation.what}: published")
        # THEN exactly what the served pages say was published, each bucket once
        wanted = _requests_served(served, prepared)
        assert published_sums(world)[0] == wanted, mutation
    # AND the next clean run completes the picture (or leaves it as it is), counting nothing twice
    lab.clock.advance(300)
    world.run()
    assert published_sums(world)[0] == wanted


def test_the_rewriting_session_sees_the_usage_calls(lab: MonitorLab) -> None:
    prepared = lab.prepare()
    served: dict[str, bytes] = {}
    _run(prepared.world, lambda: RewritingSession(Mutation("extra fields", value=1), served))
    assert set(served) == {"completions", "embeddings"}
    assert published_sums(prepared.world) == expected_sums(prepared.world)
    assert m.key_dimensions(prepared.world.settings.environment, KEY_NAME)


# --- the state itself: every field a run writes round-trips; anything else is refused with MonitorStateError -------

_T = 1_800_000_000 - 1_800_000_000 % 60
_kinds = st.sampled_from(["completions", "embeddings", "images", "audio_transcriptions"])
_buckets = st.integers(0, 20_000).map(lambda minutes: _T - 60 * minutes)
_set_aside = st.builds(SetAside, _kinds, _buckets, st.text(max_size=PROBLEM_MAX_CHARS))
_intents = st.builds(
    PublishIntent,
    start=_buckets,
    end=_buckets,
    first_marker=st.integers(1, 10**9),
    boundaries=st.lists(st.tuples(_buckets, st.text(max_size=64), st.text(max_size=20)).map(list), max_size=5),
    created_at=st.integers(0, 2**40),
    skipped=st.lists(st.tuples(_kinds, _buckets).map(list), max_size=MAX_SET_ASIDE),
    replay=st.none() | _kinds,
)
_digests = st.text("0123456789abcdef", min_size=AUDIT_DIGEST_CHARS, max_size=AUDIT_DIGEST_CHARS)
_streams = st.builds(
    AuditStream,
    st.integers(0, 2**40),
    st.integers(0, AUDIT_WINDOW_MAX),
    st.lists(_digests, max_size=AUDIT_SEEN_HARD_MAX),
)
_audits = st.builds(
    AuditState,
    keys=st.none() | _streams,
    admin=st.none() | _streams,
    listed_at=st.none() | st.integers(0, 2**40),
    generation=st.none() | st.text("0123456789abcdef", min_size=12, max_size=12),
    off_since=st.none() | st.integers(0, 2**40),
    id_unknown=st.booleans(),
    keyrot_ids=st.lists(_digests, max_size=AUDIT_KEYROT_IDS_MAX),
)
states = st.builds(
    MonitorState,
    watermark=_buckets,
    marker=st.integers(0, 10**9),
    intent=st.none() | _intents,
    lease=st.none() | st.builds(Lease, st.text(max_size=32), st.integers(0, 2**40)),
    claim=st.none() | st.integers(0, 10**6),
    suspect=st.none() | st.tuples(_kinds, _buckets, st.integers(1, 10)).map(list),
    set_aside=st.lists(_set_aside, max_size=MAX_SET_ASIDE),
    audit=st.none() | _audits,
)


@settings(max_examples=300, deadline=None)
@given(state=states)
def test_every_state_a_run_writes_reads_back_as_it_was(state: MonitorState) -> None:
    # GIVEN any state a run may write (intent with skipped buckets or a replay, lease, claim, suspect, set-aside)
    # WHEN it is written and read back THEN it is the same state
    assert MonitorState.from_json(state.to_json(), "/keyrot/dev/monitor-state") == state


@settings(max_examples=300, deadline=None)
@given(
    state=states,
    field=st.sampled_from(["suspect", "set_aside", "claim", "intent", "lease", "audit"]),
    value=json_values,
)
def test_a_state_with_a_damaged_field_is_read_or_refused_never_misread(
    state: MonitorState, field: str, value: Any
) -> None:
    # GIVEN a written state whose field is replaced by any JSON value (a hand edit, another tool)
    payload = json.loads(state.to_json())
    payload[field] = value
    # WHEN it is read THEN it is refused with the monitor's own error, or read as a state that writes back the same
    try:
        read = MonitorState.from_json(json.dumps(payload), "/keyrot/dev/monitor-state")
    except MonitorStateError:
        return
    assert MonitorState.from_json(read.to_json(), "/keyrot/dev/monitor-state") == read


@settings(max_examples=200, deadline=None)
@given(state=states, kind=unicode_text)
def test_a_set_aside_bucket_of_an_unknown_usage_kind_is_refused(state: MonitorState, kind: str) -> None:
    # GIVEN a state whose set-aside bucket names a usage kind keyrot does not read (a replay could not read it)
    assume(kind not in KIND_FIELDS)
    payload = json.loads(state.to_json())
    payload["set_aside"] = [{"kind": kind, "bucket": _T, "problem": "x"}]
    # WHEN it is read THEN it is refused
    with pytest.raises(MonitorStateError):
        MonitorState.from_json(json.dumps(payload), "/keyrot/dev/monitor-state")


@settings(max_examples=300, deadline=None)
@given(
    state=states,
    where=st.sampled_from(["keys", "admin", "listed_at", "generation", "off_since", "id_unknown", "keyrot_ids"]),
    value=json_values,
)
def test_a_damaged_audit_cursor_is_read_or_refused_never_misread(state: MonitorState, where: str, value: Any) -> None:
    # GIVEN a written state whose audit cursor has one field replaced by any JSON value
    payload = json.loads(state.to_json())
    payload["audit"] = {**(payload.get("audit") or {}), where: value}
    # WHEN it is read THEN it is refused with the monitor's own error, or read as a state that writes back the same
    try:
        read = MonitorState.from_json(json.dumps(payload), "/keyrot/dev/monitor-state")
    except MonitorStateError:
        return
    assert MonitorState.from_json(read.to_json(), "/keyrot/dev/monitor-state") == read


@settings(max_examples=100, deadline=None)
@given(state=states)
def test_the_largest_audit_cursor_still_fits_beside_the_rest_of_the_state(state: MonitorState) -> None:
    # GIVEN any state with both audit streams at their largest
    full = AuditStream(2**40, AUDIT_WINDOW_MAX, ["f" * AUDIT_DIGEST_CHARS] * AUDIT_SEEN_HARD_MAX)
    state.audit = AuditState(full, full, 2**40, "a" * 12, 2**40, True, ["e" * AUDIT_DIGEST_CHARS] * 6)
    # WHEN written THEN it fits the parameter (dedup entries may make room) and reads back
    assert MonitorState.from_json(state.to_json(), "/keyrot/dev/monitor-state").audit == state.audit
