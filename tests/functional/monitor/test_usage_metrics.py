"""Usage becomes per-key CloudWatch metrics, exactly once per bucket, with dimensions stable across rotations."""

from __future__ import annotations

from keyrot import metric_names as m
from lab.monitor_scenario import MonitorWorld

from .conftest import current_key_id, rotated, usage

SETTLE = 600


def test_per_key_metrics_have_exact_values_per_bucket(monitor: MonitorWorld) -> None:
    # GIVEN two managed keys and a first run that sets the watermark
    chat, search = rotated(monitor, "chat-backend"), rotated(monitor, "search")
    monitor.run()
    chat_id, search_id = current_key_id(monitor, chat), current_key_id(monitor, search)
    # WHEN both keys are used in the next minutes
    usage(monitor, chat_id, 1, num_model_requests=3, input_tokens=300, output_tokens=40)
    usage(monitor, chat_id, 1, "embeddings", num_model_requests=2, input_tokens=50)
    usage(monitor, chat_id, 2, num_model_requests=1, input_tokens=10, output_tokens=5)
    usage(monitor, search_id, 2, "images", num_model_requests=1, images=4)
    usage(monitor, search_id, 3, "audio_speeches", num_model_requests=1, characters=120)
    usage(monitor, search_id, 3, "audio_transcriptions", num_model_requests=2, seconds=31)
    monitor.clock.advance(5 * 60 + SETTLE)
    report = monitor.run()
    # THEN each bucket's sums are exact
    t = monitor.start
    chat_dims, search_dims = m.key_dimensions("dev", "chat-backend"), m.key_dimensions("dev", "search")
    window = (t - SETTLE, t + 10 * 60)
    assert report.window == (t - SETTLE, t + 5 * 60)
    assert monitor.sums(m.REQUESTS, chat_dims, *window) == {t + 60: 5, t + 120: 1}
    assert monitor.sums(m.INPUT_TOKENS, chat_dims, *window) == {t + 60: 350, t + 120: 10}
    assert monitor.sums(m.OUTPUT_TOKENS, chat_dims, *window) == {t + 60: 40, t + 120: 5}
    assert monitor.sums(m.REQUESTS, search_dims, *window) == {t + 120: 1, t + 180: 3}
    assert monitor.sums(m.IMAGES, search_dims, *window) == {t + 120: 4}
    assert monitor.sums(m.AUDIO_CHARACTERS, search_dims, *window) == {t + 180: 120}
    assert monitor.sums(m.AUDIO_SECONDS, search_dims, *window) == {t + 180: 31}


def test_dimensions_stay_on_the_key_name_across_a_rotation(monitor: MonitorWorld) -> None:
    chat = rotated(monitor, "chat-backend")
    monitor.run()
    old_id = current_key_id(monitor, chat)
    usage(monitor, old_id, 1, num_model_requests=2, input_tokens=1, output_tokens=1)
    assert monitor.rotation.driver().rotate(chat).succeeded
    usage(monitor, current_key_id(monitor, chat), 1, num_model_requests=5, input_tokens=1, output_tokens=1)
    monitor.clock.advance(3 * 60 + SETTLE)
    monitor.run()
    t = monitor.start
    sums = monitor.sums(m.REQUESTS, m.key_dimensions("dev", "chat-backend"), t - SETTLE, t + 600)
    assert sums == {t + 60: 7}


def test_overlapping_runs_never_count_a_bucket_twice(monitor: MonitorWorld) -> None:
    chat = rotated(monitor, "chat-backend")
    monitor.run()
    usage(monitor, current_key_id(monitor, chat), 1, num_model_requests=4, input_tokens=8, output_tokens=2)
    monitor.clock.advance(2 * 60 + SETTLE)
    monitor.run()
    for _ in range(3):  # more runs, a minute apart, over the same recent past
        monitor.clock.advance(60)
        monitor.run()
    t = monitor.start
    assert monitor.sums(m.REQUESTS, m.key_dimensions("dev", "chat-backend"), t - SETTLE, t + 3600) == {t + 60: 4}


def test_usage_held_back_by_the_settle_delay_is_counted_on_a_later_run(monitor: MonitorWorld) -> None:
    chat = rotated(monitor, "chat-backend")
    monitor.run()
    key_id = current_key_id(monitor, chat)
    # GIVEN usage in minute 1 that OpenAI only reports four minutes later
    monitor.rotation.openai.state.record_usage(
        key_id, at=monitor.start + 65, arrives_after_seconds=240, num_model_requests=6, input_tokens=1, output_tokens=1
    )
    # WHEN a run happens before it arrives, but after the settle delay of minute 1 has not yet passed
    monitor.clock.advance(120)
    early = monitor.run()
    assert early.window is None or early.window[1] <= monitor.start + 60
    # THEN the run after the settle delay counts it, once
    monitor.clock.advance(SETTLE)
    monitor.run()
    t = monitor.start
    assert monitor.sums(m.REQUESTS, m.key_dimensions("dev", "chat-backend"), t - SETTLE, t + 3600) == {t + 60: 6}


def test_outage_longer_than_a_usage_page_leaves_no_gap(monitor: MonitorWorld) -> None:
    chat = rotated(monitor, "chat-backend")
    monitor.run()
    key_id = current_key_id(monitor, chat)
    # GIVEN 30 hours without a run (more than one page of 1440 one-minute buckets), with usage throughout
    minutes = [5, 700, 1439, 1440, 1441, 1789]
    for minute in minutes:
        usage(monitor, key_id, minute, num_model_requests=minute, input_tokens=1, output_tokens=1)
    monitor.clock.advance(30 * 3600)
    report = monitor.run()
    t = monitor.start
    sums = monitor.sums(m.REQUESTS, m.key_dimensions("dev", "chat-backend"), t - SETTLE, t + 31 * 3600)
    assert sums == {t + minute * 60: minute for minute in minutes}
    completions_pages = [c for c in monitor.rotation.openai.calls_to("usage") if c.path.endswith("/completions")]
    assert any("page" in call.query for call in completions_pages)
    assert report.window is not None and report.window[1] == t + 30 * 3600 - SETTLE


def test_an_outage_longer_than_one_run_catches_up_over_several_runs(monitor: MonitorWorld) -> None:
    chat = rotated(monitor, "chat-backend")
    monitor.run()
    key_id = current_key_id(monitor, chat)
    minutes = [10, 36 * 60 - 1, 36 * 60, 50 * 60]
    for minute in minutes:
        usage(monitor, key_id, minute, num_model_requests=1, input_tokens=1, output_tokens=1)
    monitor.clock.advance(52 * 3600)
    first = monitor.run()
    second = monitor.run()
    assert first.window is not None and second.window is not None and first.window[1] == second.window[0]
    t = monitor.start
    sums = monitor.sums(m.REQUESTS, m.key_dimensions("dev", "chat-backend"), t - SETTLE, t + 53 * 3600)
    assert sums == {t + minute * 60: 1 for minute in minutes}
