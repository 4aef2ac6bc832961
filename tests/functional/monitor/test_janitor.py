"""The janitor revokes idle previous keys after their grace period, follows the in-use policy, never forgets."""

from __future__ import annotations

from typing import Any

import requests

from keyrot import metric_names as m
from keyrot.openai_admin import KeyStatus, OpenAIKeyProbe, OpenAITransport
from lab.monitor_scenario import MonitorWorld
from lab.openai_standin import server_error

from .conftest import rotated

HOUR = 3600


def _use(world: MonitorWorld, api_key: str) -> None:
    """The application still calls OpenAI with this key (updates last_used_at and usage)."""
    response = requests.post(
        f"{world.rotation.openai.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]},
        timeout=5,
    )
    assert response.status_code == 200


def _status(world: MonitorWorld, api_key: str) -> KeyStatus:
    return OpenAIKeyProbe(OpenAITransport(world.rotation.openai.base_url)).check(api_key).status


def _previous(world: MonitorWorld, arn: str) -> Any:
    previous = world.rotation.previous(arn)
    assert previous is not None
    return previous


def test_idle_previous_key_is_revoked_after_the_grace_period(monitor: MonitorWorld) -> None:
    arn = rotated(monitor, "chat-backend", times=2)
    old = _previous(monitor, arn)
    monitor.clock.advance(monitor.settings.grace_period_seconds - 60)
    assert monitor.run().revoked == []
    monitor.clock.advance(120)
    report = monitor.run()
    assert report.revoked == [old.key_id]
    assert _status(monitor, old.api_key) is KeyStatus.DEAD
    assert _status(monitor, monitor.rotation.current(arn).api_key) is KeyStatus.VALID
    assert any("KEYROT_REVOKED" in stages for stages in monitor.rotation.stages(arn).values())
    assert monitor.run().revoked == []  # nothing left to do


def test_previous_key_in_use_waits_for_the_quiet_window(monitor: MonitorWorld) -> None:
    arn = rotated(monitor, "chat-backend", times=2)
    old = _previous(monitor, arn)
    monitor.clock.advance(monitor.settings.grace_period_seconds + 60)
    _use(monitor, old.api_key)
    monitor.clock.advance(60)
    assert monitor.run().revoked == []
    assert _status(monitor, old.api_key) is KeyStatus.VALID
    monitor.clock.advance(monitor.settings.quiet_window_seconds)
    assert monitor.run().revoked == [old.key_id]


def test_in_use_at_maximum_grace_is_kept_and_alarmed_under_policy_keep(monitor: MonitorWorld) -> None:
    arn = rotated(monitor, "chat-backend", times=2)
    old = _previous(monitor, arn)
    monitor.clock.advance(monitor.settings.max_grace_period_seconds + 60)
    _use(monitor, old.api_key)
    report = monitor.run()
    assert report.revoked == [] and report.kept_in_use == [old.key_id]
    assert _status(monitor, old.api_key) is KeyStatus.VALID
    subjects = [n["subject"] for n in monitor.notifications()]
    assert "[keyrot dev] Previous key of chat-backend used past maximum grace" in subjects


def test_in_use_at_maximum_grace_is_revoked_under_policy_revoke(monitor: MonitorWorld) -> None:
    world = monitor.with_settings(in_use_policy="revoke")
    arn = rotated(world, "chat-backend", times=2)
    old = _previous(world, arn)
    world.clock.advance(world.settings.max_grace_period_seconds + 60)
    _use(world, old.api_key)
    report = world.run()
    assert report.revoked == [old.key_id]
    assert _status(world, old.api_key) is KeyStatus.DEAD
    (note,) = [n for n in world.notifications() if "maximum grace" in n["subject"]]
    assert "revoked it anyway (policy: revoke)" in note["message"]


def test_a_failed_revocation_is_notified_and_retried_next_run(monitor: MonitorWorld) -> None:
    arn = rotated(monitor, "chat-backend", times=2)
    old = _previous(monitor, arn)
    fault = monitor.rotation.openai.faults.add(server_error("delete_service_account"))
    monitor.clock.advance(monitor.settings.grace_period_seconds + 60)
    report = monitor.run()
    assert report.revocation_failures == [old.key_id] and report.revoked == []
    (note,) = [n for n in monitor.notifications() if "failed" in n["subject"]]
    assert note["subject"] == "[keyrot dev] Revoking the previous key of chat-backend failed"
    assert "ServerError" in note["message"] and "#revocation-failed" in note["message"]
    failed = monitor.cloudwatch.get_metric_statistics(
        Namespace=m.NAMESPACE,
        MetricName=m.REVOCATION_FAILED,
        Dimensions=[{"Name": "Environment", "Value": "dev"}],
        StartTime=monitor.now().replace(year=2000),
        EndTime=monitor.now().replace(year=2100),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    assert [point["Sum"] for point in failed] == [1.0]
    # WHEN OpenAI recovers, the next run finishes the job
    monitor.rotation.openai.faults.clear()
    assert fault is not None
    monitor.clock.advance(300)
    assert monitor.run().revoked == [old.key_id]
    assert _status(monitor, old.api_key) is KeyStatus.DEAD


def test_use_an_earlier_run_saw_keeps_the_previous_key_alive(monitor: MonitorWorld) -> None:
    from .conftest import usage

    # GIVEN a previous key past its grace period whose use shows in the Usage API but not (yet) in last_used_at
    arn = rotated(monitor, "chat-backend", times=2)
    old = _previous(monitor, arn)
    grace, quiet = monitor.settings.grace_period_seconds, monitor.settings.quiet_window_seconds
    monitor.clock.advance(grace + 60)
    minute = (monitor.now().timestamp() - monitor.start) // 60
    usage(monitor, old.key_id, int(minute), num_model_requests=3, input_tokens=1, output_tokens=1)
    # WHEN runs come after this run's own usage window has moved past that minute, inside the quiet window
    monitor.clock.advance(quiet // 2)
    report = monitor.run()
    # THEN the janitor reads the quiet window's usage before revoking, and keeps the key (checked without using it:
    # a call with the key would move its last_used_at)
    assert report.revoked == [] and monitor.rotation.openai.state.key_is_live(old.key_id)
    monitor.clock.advance(quiet // 2 - 120)
    assert monitor.run().revoked == []
    # and revokes it once the whole quiet window has passed without use
    monitor.clock.advance(240)
    assert monitor.run().revoked == [old.key_id]


def test_no_revocation_when_the_quiet_window_cannot_be_read(monitor: MonitorWorld, monkeypatch: Any) -> None:
    import keyrot.monitor.run as run_module
    from keyrot.openai_admin import PermissionDeniedError

    # GIVEN an idle previous key past its grace period, and a Usage API that refuses the janitor's quiet-window read
    arn = rotated(monitor, "chat-backend", times=2)
    old = _previous(monitor, arn)
    monitor.run()
    monitor.clock.advance(monitor.settings.grace_period_seconds + 60)
    quiet_start = run_module.align(int(monitor.now().timestamp()) - monitor.settings.quiet_window_seconds)
    real_fetch = run_module.fetch_usage

    def refuse_quiet_window(admin: Any, kinds: Any, project_id: str, start: int, end: int, **options: Any) -> Any:
        if start == quiet_start:
            raise PermissionDeniedError("OpenAI read completions usage: HTTP 403", status=403)
        return real_fetch(admin, kinds, project_id, start, end, **options)

    monkeypatch.setattr(run_module, "fetch_usage", refuse_quiet_window)
    # THEN the key is kept this run (no revocation on a guess)
    assert monitor.run().revoked == [] and monitor.rotation.openai.state.key_is_live(old.key_id)
    # and the next run, able to read it, revokes the key
    monkeypatch.setattr(run_module, "fetch_usage", real_fetch)
    assert monitor.run().revoked == [old.key_id]
