"""Unknown and retired keys raise metrics and one notification per key per day, with no key material."""

from __future__ import annotations

import time

import pytest

from keyrot import metric_names as m
from keyrot.errors import AwsCallError
from keyrot.monitor.state import STATE_MAX_CHARS
from lab.monitor_scenario import MonitorWorld

from .conftest import current_key_id, previous_key_id, rotated, usage

SETTLE = 600
DAY = 86400


def test_usage_by_an_unmanaged_key_is_measured_and_notified_once_a_day(monitor: MonitorWorld) -> None:
    rotated(monitor, "chat-backend")
    monitor.run()
    monitor.notifications()
    state = monitor.rotation.openai.state
    key_id, value = state.add_user_key(monitor.rotation.project_id, name="laptop key", email="dev@example.com")
    usage(monitor, key_id, 1, num_model_requests=7, input_tokens=1, output_tokens=1)
    usage(monitor, key_id, 2, num_model_requests=2, input_tokens=1, output_tokens=1)
    monitor.clock.advance(4 * 60 + SETTLE)
    report = monitor.run()
    t = monitor.start
    env = m.environment_dimensions("dev")
    assert report.unmanaged_keys == [key_id]
    assert monitor.sums(m.UNMANAGED_KEY_REQUESTS, env, t - SETTLE, t + 3600) == {t + 60: 7, t + 120: 2}
    (note,) = monitor.notifications()
    assert note["subject"] == f"[keyrot dev] Unmanaged OpenAI key {key_id}"
    assert "user A Developer" in note["message"] and "9 request(s)" in note["message"]
    assert "keyrot audit --env dev" in note["message"] and "#unmanaged-key-requests" in note["message"]
    assert value not in note["message"] and value[-8:] not in note["message"]
    # the same key does not page again the same day, even with more usage
    usage(monitor, key_id, 20, num_model_requests=1, input_tokens=1, output_tokens=1)
    monitor.clock.advance(20 * 60)
    assert monitor.run().notifications_suppressed == 1
    assert monitor.notifications() == []
    monitor.clock.advance(DAY)
    monitor.run()
    assert [n["subject"] for n in monitor.notifications()] == [f"[keyrot dev] Unmanaged OpenAI key {key_id}"]


def test_an_unmanaged_key_without_usage_is_still_reported(monitor: MonitorWorld) -> None:
    rotated(monitor, "chat-backend")
    key_id, _ = monitor.rotation.openai.state.add_user_key(monitor.rotation.project_id)
    report = monitor.run()
    assert report.unmanaged_keys == [key_id]
    (note,) = monitor.notifications()
    assert "no usage seen yet" in note["message"]
    gauge = monitor.cloudwatch.get_metric_statistics(
        Namespace=m.NAMESPACE,
        MetricName=m.UNMANAGED_KEYS,
        Dimensions=[{"Name": "Environment", "Value": "dev"}],
        StartTime=monitor.now().replace(year=2000),
        EndTime=monitor.now().replace(year=2100),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [point["Maximum"] for point in gauge] == [1.0]


def test_keys_minted_for_another_environment_in_a_shared_project_are_not_reported(monitor: MonitorWorld) -> None:
    prod = MonitorWorld.create(monitor.rotation.openai, monitor.clock, environment="prod")
    prod.rotation.project_id = monitor.rotation.project_id  # both environments share one OpenAI project
    arn = prod.rotation.create_managed_secret("chat-backend")
    assert prod.rotation.driver().rotate(arn).succeeded
    rotated(monitor, "chat-backend")
    assert monitor.run().unmanaged_keys == []


def test_previous_key_used_after_its_grace_period_is_a_retired_key(monitor: MonitorWorld) -> None:
    arn = rotated(monitor, "chat-backend", times=2)
    grace = monitor.settings.grace_period_seconds
    monitor.run()
    old = previous_key_id(monitor, arn)
    usage(monitor, old, 1, num_model_requests=3, input_tokens=1, output_tokens=1)  # inside the grace period
    monitor.clock.advance(2 * 60 + SETTLE)
    report = monitor.run()
    assert report.retired_keys == []
    monitor.clock.advance(grace)
    minute = (grace + 5 * 60) // 60
    usage(monitor, old, minute, num_model_requests=4, input_tokens=1, output_tokens=1)
    monitor.clock.advance(10 * 60 + SETTLE)
    report = monitor.run()
    assert report.retired_keys == [old]
    t = monitor.start
    retired = monitor.sums(m.RETIRED_KEY_REQUESTS, m.environment_dimensions("dev"), t, t + grace + 3 * 3600)
    assert retired == {t + minute * 60: 4}
    notes = [n for n in monitor.notifications() if "Retired key" in n["subject"]]
    assert [n["subject"] for n in notes] == ["[keyrot dev] Retired key of chat-backend still in use"]
    assert old in notes[0]["message"] and "past its grace period" in notes[0]["message"]
    # the old key's usage is still the application's usage
    requests = monitor.sums(m.REQUESTS, m.key_dimensions("dev", "chat-backend"), t, t + grace + 3 * 3600)
    assert requests == {t + 60: 3, t + minute * 60: 4}


def test_usage_by_a_revoked_key_is_a_retired_key(monitor: MonitorWorld) -> None:
    from keyrot.rotation import revoke_previous

    arn = rotated(monitor, "chat-backend", times=2)
    monitor.run()
    old = previous_key_id(monitor, arn)
    assert revoke_previous(monitor.rotation.context(), arn).status == "revoked"
    monitor.clock.advance(monitor.settings.grace_period_seconds)
    minute = monitor.settings.grace_period_seconds // 60 + 1
    usage(monitor, old, minute, num_model_requests=1, input_tokens=1, output_tokens=1)
    monitor.clock.advance(5 * 60 + SETTLE)
    report = monitor.run()
    assert report.retired_keys == [old]
    (note,) = [n for n in monitor.notifications() if "Retired key" in n["subject"]]
    assert "was revoked" in note["message"]


def test_usage_by_a_key_revoked_in_an_emergency_is_reported_at_once(monitor: MonitorWorld) -> None:
    from keyrot.rotation import revoke_previous

    # GIVEN a leaked key revoked at the rotation (grace 0, `keyrot rotate --emergency`), well inside the grace period
    arn = rotated(monitor, "chat-backend", times=2)
    monitor.run()
    old = previous_key_id(monitor, arn)
    assert revoke_previous(monitor.rotation.context(), arn).status == "revoked"
    # WHEN it shows usage minutes later (the leak's user, or an app that never picked up the new key)
    monitor.clock.advance(5 * 60)
    minute = 5 * 60 // 60 + 1
    usage(monitor, old, minute, num_model_requests=2, input_tokens=1, output_tokens=1)
    monitor.clock.advance(5 * 60 + SETTLE)
    report = monitor.run()
    # THEN it is retired-key usage now, not after a grace period that no longer applies
    assert report.retired_keys == [old]
    t = monitor.start
    retired = monitor.sums(m.RETIRED_KEY_REQUESTS, m.environment_dimensions("dev"), t, t + 3 * 3600)
    assert sum(retired.values()) == 2
    (note,) = [n for n in monitor.notifications() if "Retired key" in n["subject"]]
    assert "was revoked" in note["message"]


def test_a_secret_never_minted_ages_from_its_creation(monitor: MonitorWorld) -> None:
    # GIVEN a secret the stack created whose first rotation never ran (no admin key put, nobody started it)
    monitor.rotation.create_managed_secret("batch-embeddings")
    created = time.time()  # moto stamps CreatedDate with the wall clock
    # WHEN the monitor runs five hours (of its clock) later
    monitor.clock.advance(5 * 3600)
    monitor.run()
    # THEN KeyAgeHours counts from the secret's creation, so the key-age alarm fires for it in time
    ages = monitor.maxima(m.KEY_AGE_HOURS, m.key_dimensions("dev", "batch-embeddings"))
    expected = (monitor.now().timestamp() - created) / 3600
    assert [round(age) for age in ages] == [round(expected)] and expected > 3


def test_spend_and_key_age_gauges(monitor: MonitorWorld) -> None:
    arn = rotated(monitor, "chat-backend")
    key_id = current_key_id(monitor, arn)
    state = monitor.rotation.openai.state
    monitor.clock.advance(2 * 3600)
    state.record_cost(key_id, 1.25)  # recorded at the run's time, so both fall in the same UTC day
    user_key, _ = state.add_user_key(monitor.rotation.project_id)
    state.record_cost(user_key, 0.5)
    monitor.run()
    assert monitor.maxima(m.SPEND_TODAY_USD, m.environment_dimensions("dev")) == [1.75]
    assert monitor.maxima(m.COST_TODAY_USD, m.key_dimensions("dev", "chat-backend")) == [1.25]
    assert monitor.maxima(m.KEY_AGE_HOURS, m.key_dimensions("dev", "chat-backend")) == [2.0]


def test_many_unmanaged_keys_page_once_each_and_the_state_still_fits(monitor: MonitorWorld) -> None:
    # GIVEN 120 keys someone made by hand in the project (far more than a few findings)
    rotated(monitor, "chat-backend")
    state = monitor.rotation.openai.state
    for index in range(120):
        state.add_user_key(monitor.rotation.project_id, name=f"hand-made {index}")
    # WHEN the monitor runs three times, five minutes apart
    first = monitor.run()
    sent = [len(monitor.notifications())]
    for _ in range(2):
        monitor.clock.advance(300)
        monitor.run()
        sent.append(len(monitor.notifications()))
    # THEN each key pages once, then never again within the de-duplication period
    assert len(first.unmanaged_keys) == 120 and sent == [120, 0, 0]
    # AND the state parameter holds digests, no key ids, and fits SSM's limit on Intelligent-Tiering
    stored = monitor.ssm.get_parameter(Name=monitor.settings.state_parameter)["Parameter"]
    assert len(stored["Value"]) <= STATE_MAX_CHARS and "key_" not in stored["Value"]
    (described,) = monitor.ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Values": [monitor.settings.state_parameter]}]
    )["Parameters"]
    assert described["Tier"] == "Intelligent-Tiering"


def test_a_finding_survives_a_failure_later_in_the_run(monitor: MonitorWorld) -> None:
    from typing import Any

    from botocore.exceptions import ClientError

    from keyrot.errors import AwsCallError

    # GIVEN an unmanaged key used within the window, and CloudWatch refusing this run's gauges (its last call)
    rotated(monitor, "chat-backend")
    key_id, _ = monitor.rotation.openai.state.add_user_key(monitor.rotation.project_id)
    usage(monitor, key_id, 1, num_model_requests=2, input_tokens=1, output_tokens=1)
    monitor.clock.advance(5 * 60 + SETTLE)

    def refuse_gauges(params: dict[str, Any], **_: Any) -> None:
        if any(datum["MetricName"] == m.KEY_AGE_HOURS for datum in params["MetricData"]):
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "x"}}, "PutMetricData")

    monitor.cloudwatch.meta.events.register("before-parameter-build.cloudwatch.PutMetricData", refuse_gauges)
    # WHEN the run fails after committing the window's usage
    try:
        with pytest.raises(AwsCallError):
            monitor.run()
    finally:
        monitor.cloudwatch.meta.events.unregister("before-parameter-build.cloudwatch.PutMetricData", refuse_gauges)
    # THEN on-call was told anyway (the usage it came from will not be read again)
    assert [n["subject"] for n in monitor.notifications()] == [f"[keyrot dev] Unmanaged OpenAI key {key_id}"]
    # and the next run, the fault gone, does not page again for it
    monitor.clock.advance(300)
    monitor.run()
    assert monitor.notifications() == []


class _SnsDown:
    """SNS refusing every publish (a throttled or misconfigured topic), everything else as the real client."""

    def __init__(self, sns: object) -> None:
        self._sns = sns

    def publish(self, **_: object) -> None:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "Publish")

    def __getattr__(self, name: str) -> object:
        return getattr(self._sns, name)


def test_a_notification_sns_refused_is_sent_by_the_next_run(monitor: MonitorWorld) -> None:
    # GIVEN a steady environment, then a key made by hand
    rotated(monitor, "chat-backend")
    monitor.run()
    monitor.notifications()
    key_id, _ = monitor.rotation.openai.state.add_user_key(monitor.rotation.project_id)
    # WHEN the run that finds it cannot publish to SNS
    # THEN that run fails (the function's error alarm sees it), on-call got nothing, and nothing is remembered as told
    with pytest.raises(AwsCallError, match="Publish"):
        monitor.run(sns=_SnsDown(monitor.sns))
    assert monitor.notifications() == []
    # AND the next run, with SNS back, tells on-call once
    monitor.clock.advance(15 * 60)
    monitor.run()
    assert [n["subject"] for n in monitor.notifications()] == [f"[keyrot dev] Unmanaged OpenAI key {key_id}"]
    monitor.clock.advance(15 * 60)
    monitor.run()
    assert monitor.notifications() == []
