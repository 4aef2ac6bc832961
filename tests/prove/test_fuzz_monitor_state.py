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
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from keyrot import metric_names as m
from keyrot.errors import KeyrotError
from keyrot.monitor.run import run_monitor
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
