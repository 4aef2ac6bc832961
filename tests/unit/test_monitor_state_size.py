"""The monitor state always fits its SSM parameter: dedup entries give way, the publish intent is bounded."""

from __future__ import annotations

import json

import pytest

from keyrot import metric_names as m
from keyrot.monitor import run
from keyrot.monitor.publisher import Datum
from keyrot.monitor.state import STATE_MAX_CHARS, MonitorState, PublishIntent, dedup_digest

NOW = 1_800_000_000 - 1_800_000_000 % 60
LONG_NAME = "k" + "x" * 63  # the longest key name keyrot accepts


def _intent(calls: int) -> PublishIntent:
    boundaries = [[NOW + 60 * i, LONG_NAME, m.OUTPUT_TOKENS] for i in range(calls)]
    return PublishIntent(NOW, NOW + 60 * calls, 1, boundaries, NOW)


def test_dedup_entries_are_short_digests_without_key_ids() -> None:
    state = MonitorState(watermark=NOW)
    state.mark_notified("unmanaged:key_AbCdEfGhIjKlMnOpQrStUvWx", NOW + 86_400)
    assert list(state.notified) == [dedup_digest("unmanaged:key_AbCdEfGhIjKlMnOpQrStUvWx")]
    assert "key_" not in state.to_json() and len(next(iter(state.notified))) == 12
    assert state.recently_notified("unmanaged:key_AbCdEfGhIjKlMnOpQrStUvWx", NOW)
    assert not state.recently_notified("unmanaged:key_AbCdEfGhIjKlMnOpQrStUvWx", NOW + 86_400)


def test_a_full_state_gives_up_the_dedup_entries_closest_to_expiry() -> None:
    # GIVEN a state at its largest intent and far more dedup entries than fit
    state = MonitorState(watermark=NOW, intent=_intent(40))
    for index in range(1_000):
        state.mark_notified(f"unmanaged:key_{index:024d}", NOW + index)
    # WHEN it is serialized THEN it fits, keeping the entries that expire last
    text = state.to_json()
    assert len(text) <= STATE_MAX_CHARS
    kept = state.notified
    assert 100 < len(kept) < 1_000
    assert min(kept.values()) > NOW + 1_000 - len(kept) - 1  # exactly the latest-expiring ones survive
    assert MonitorState.from_json(text, "/keyrot/dev/monitor-state").notified == kept


def test_a_state_that_cannot_fit_is_an_error_not_a_silent_truncation() -> None:
    state = MonitorState(watermark=NOW, intent=_intent(200))
    with pytest.raises(Exception, match="over SSM's"):
        state.to_json()


def test_the_publisher_shrinks_its_window_until_the_intent_fits() -> None:
    # GIVEN usage for 600 minutes of a key with the longest name: one batch per minute would make a huge intent
    datums = [
        Datum.of(metric, m.key_dimensions("dev", f"{LONG_NAME[:-3]}{k:03d}"), NOW + 60 * minute, 1)
        for minute in range(600)
        for k in range(200)
        for metric in (m.REQUESTS, m.INPUT_TOKENS, m.OUTPUT_TOKENS)
    ]
    # WHEN it is fitted into one run's publish
    end, kept, batches = run._fit(datums, NOW, NOW + 600 * 60)
    # THEN the window ends on a minute boundary, keeps every datum before it, and its intent fits the budget
    assert NOW < end < NOW + 600 * 60 and end % 60 == 0
    assert kept == [datum for datum in datums if datum.timestamp < end]
    assert sum(len(batch) for batch in batches) == len(kept)
    assert len(json.dumps([batch[0].sort_key for batch in batches])) <= run.INTENT_MAX_CHARS
    # and the largest possible state with that intent still fits the parameter
    boundaries = [batch[0].sort_key for batch in batches]
    assert len(MonitorState(NOW, intent=PublishIntent(NOW, end, 1, boundaries, NOW)).to_json()) <= STATE_MAX_CHARS


def test_the_monitor_publishes_metrics_with_a_single_attempt_client() -> None:
    # PutMetricData is not idempotent: a retry after a lost answer would count datapoints twice. The intent and
    # markers recover a failed call on the next run, so botocore must not repeat it (the fault matrix shows why).
    from keyrot.aws.clients import aws_client, monitor_clients

    aws_client.cache_clear()
    clients = monitor_clients("us-east-1")
    assert clients["cloudwatch"].meta.config.retries["total_max_attempts"] == 1
    assert all(clients[name].meta.config.retries["total_max_attempts"] > 1 for name in ("secretsmanager", "ssm", "sns"))
    aws_client.cache_clear()


def test_the_largest_state_with_set_aside_buckets_still_fits_with_room_for_dedup_entries() -> None:
    from keyrot.monitor.state import MAX_SET_ASIDE, PROBLEM_MAX_CHARS, Lease, SetAside

    # GIVEN the largest intent, every set-aside slot taken with the longest problem, skipped in the intent,
    # a suspect bucket, a lease and a claim
    boundaries = [[NOW + 60 * i, LONG_NAME, m.OUTPUT_TOKENS] for i in range(200)]
    while len(json.dumps(boundaries)) > run.INTENT_MAX_CHARS:
        boundaries.pop()
    set_aside = [SetAside("audio_transcriptions", NOW - 60 * i, "p" * PROBLEM_MAX_CHARS) for i in range(MAX_SET_ASIDE)]
    skipped = [[entry.kind, entry.bucket] for entry in set_aside]
    intent = PublishIntent(NOW - 86_400, NOW, 10**9, boundaries, NOW, skipped=skipped, replay="audio_transcriptions")
    state = MonitorState(
        watermark=NOW,
        marker=10**9,
        intent=intent,
        lease=Lease("f" * 32, NOW + 900),
        claim=10**6,
        suspect=["audio_transcriptions", NOW, 2],
        set_aside=set_aside,
    )
    for index in range(20):
        state.mark_notified(f"unmanaged:key_{index:024d}", NOW + index)
    # WHEN it is serialized THEN it fits the parameter, keeps its intent and set-aside list, and reads back as is
    text = state.to_json()
    assert len(text) <= STATE_MAX_CHARS and len(state.notified) == 20
    again = MonitorState.from_json(text, "/keyrot/dev/monitor-state")
    assert again.intent == intent and again.set_aside == set_aside and again.suspect == state.suspect
