"""The program under configurations the committed stacks do not use, and failing the way `pulumi preview` would."""

from __future__ import annotations

import json
import pkgutil
import sys
from pathlib import Path
from typing import Any

import pytest
from infra_harness import REPO_ROOT, Deployment, deployed, run_program, stack_config

from keyrot import constants as c
from keyrot import metric_names as m
from keyrot.pulumi.config import SETTING_KEYS, ConfigError
from keyrot.settings import MonitorSettings, RotationSettings

pytestmark = pytest.mark.timeout(120)

EXISTING_TOPIC = "arn:aws:sns:us-east-1:111111111111:platform-oncall"


def run(stack: str = "dev", *, account: str | None = None, drop: tuple[str, ...] = (), **overrides: Any) -> Deployment:
    values = {f"keyrot:{k}": v for k, v in overrides.items()}
    return run_program(stack, stack_config(stack, values, drop=tuple(f"keyrot:{k}" for k in drop)), account=account)


def statement_ids(d: Deployment, name: str) -> set[str]:
    (policy,) = d.find("aws:iam/rolePolicy:RolePolicy", lambda r: r.name == name)
    return {s["Sid"] for s in json.loads(policy.inputs["policy"])["Statement"]}


def test_program_runs_like_the_pulumi_language_host(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN what `pulumi up` does with `main: infra/`: working directory infra/, runpy on the directory
    infra_dir = REPO_ROOT / "infra"
    monkeypatch.chdir(infra_dir)
    path_before = list(sys.path)
    d = run_program("dev", stack_config("dev"), program=infra_dir)
    # THEN the same program comes out, with the archive built under the repository's build/, not the cwd
    assert d.outputs["keySecretNames"] == deployed("dev").outputs["keySecretNames"]
    (rotation,) = d.find("aws:lambda/function:Function", lambda r: r.inputs["name"] == "keyrot-dev-rotation")
    assert Path(rotation.inputs["code"].path).parent == REPO_ROOT / "build"
    # AND the program edited no sys.path: it ran with the language host's path (infra/ first) and nothing else
    assert d.sys_path_during_run == [str(infra_dir), *path_before]


def test_nothing_in_a_program_directory_shadows_a_module() -> None:
    # GIVEN the directories Pulumi puts first on sys.path: the program's and the plugin's
    for directory in (REPO_ROOT / "infra", REPO_ROOT / "lambdas" / "keyrot" / "pulumi" / "plugin"):
        names = {p.stem if p.suffix == ".py" else p.name for p in directory.iterdir() if p.name != "__pycache__"}
        names -= {"__main__", "__init__"}
        # THEN none of their modules has the name of a standard-library or installed top-level module
        elsewhere = {
            m.name for m in pkgutil.iter_modules([p for p in sys.path if Path(p or ".").resolve() != directory])
        }
        assert not names & (set(sys.stdlib_module_names) | elsewhere), (directory, names)


def test_existing_oncall_topic_is_used_not_created() -> None:
    # GIVEN a stack pointing at the on-call team's topic instead of subscriptions
    d = run(oncallTopicArn=EXISTING_TOPIC, drop=("oncallEmails",))
    # THEN keyrot creates no topic, policy or subscription (it does not own that topic's policy)
    assert not d.of_type("aws:sns/topic:Topic")
    assert not d.of_type("aws:sns/topicPolicy:TopicPolicy")
    assert not d.of_type("aws:sns/topicSubscription:TopicSubscription")
    # AND every alarm, the rule and the monitor notify it
    assert d.outputs["oncallTopicArn"] == EXISTING_TOPIC
    for alarm in d.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        assert alarm.inputs["alarmActions"] == [EXISTING_TOPIC]
    (target,) = d.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert target.inputs["arn"] == EXISTING_TOPIC
    (monitor,) = d.find("aws:lambda/function:Function", lambda r: r.inputs["name"] == "keyrot-dev-monitor")
    assert monitor.inputs["environment"]["variables"][c.ENV_TOPIC_ARN] == EXISTING_TOPIC
    # AND the monitor gets no use of keyrot's key for a topic that is not encrypted with it
    assert "PublishToEncryptedTopic" not in statement_ids(d, "keyrot-monitor-lambda-permissions")
    assert "NotifyOncall" in statement_ids(d, "keyrot-monitor-lambda-permissions")


def test_https_endpoints_are_subscribed() -> None:
    d = run(oncallHttpsEndpoints=["https://hooks.example.com/keyrot"])
    subscriptions = {
        (s.inputs["protocol"], s.inputs["endpoint"]) for s in d.of_type("aws:sns/topicSubscription:TopicSubscription")
    }
    assert subscriptions == {("email", "keyrot-dev-alerts@example.com"), ("https", "https://hooks.example.com/keyrot")}


def test_no_dashboard_when_disabled() -> None:
    d = run(dashboard="false")
    assert not d.of_type("aws:cloudwatch/dashboard:Dashboard")
    assert "dashboardUrl" not in d.outputs


def test_one_anomaly_signal_gives_each_key_one_band_and_the_monitor_only_its_metric() -> None:
    # GIVEN a stack that keeps only the requests band per key (the cheaper setting docs/costs.md prices)
    d = run(anomalyAlarms=["requests"], drop=("dashboard",))
    names = {a.inputs["name"] for a in d.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    # THEN each key has its requests band and no input-tokens band
    for key in ("chat-backend", "batch-embeddings"):
        assert f"keyrot-dev-{key}-requests-anomaly" in names
        assert f"keyrot-dev-{key}-input-tokens-anomaly" not in names
    # AND the monitor publishes requests per key, but no per-key input tokens, which no alarm would read
    (monitor,) = d.find("aws:lambda/function:Function", lambda r: r.inputs["name"] == "keyrot-dev-monitor")
    settings = MonitorSettings.from_env(monitor.inputs["environment"]["variables"])
    assert settings.anomaly_metrics == (m.REQUESTS,)
    assert m.INPUT_TOKENS in settings.unpublished_metrics and m.REQUESTS not in settings.unpublished_metrics


def test_openai_base_url_reaches_both_functions() -> None:
    d = run(openaiBaseUrl="https://openai-proxy.internal.example.com/v1")
    functions = {
        f.inputs["name"]: f.inputs["environment"]["variables"] for f in d.of_type("aws:lambda/function:Function")
    }
    rotation = RotationSettings.from_env(functions["keyrot-dev-rotation"])
    monitor = MonitorSettings.from_env(functions["keyrot-dev-monitor"])
    assert rotation.openai_base_url == monitor.openai_base_url == "https://openai-proxy.internal.example.com/v1"


def test_key_without_readers_still_gets_a_reader_policy() -> None:
    d = run(keys=[{"name": "ops-tools"}])
    (policy,) = d.of_type("aws:iam/policy:Policy")
    assert policy.inputs["name"] == "keyrot-dev-ops-tools-reader"
    assert not d.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert set(d.outputs["readerPolicyArns"]) == {"ops-tools"}


def test_environment_name_overrides_stack_name() -> None:
    d = run(environment="qa-east")
    names = {s.inputs["name"] for s in d.of_type("aws:secretsmanager/secret:Secret")}
    assert names == {
        "keyrot/qa-east/openai-admin-key",
        "keyrot/qa-east/chat-backend",
        "keyrot/qa-east/batch-embeddings",
    }
    assert d.outputs["rotationFunctionName"] == "keyrot-qa-east-rotation"


def test_invalid_configuration_fails_the_program_with_every_problem() -> None:
    # WHEN the program runs (as in `pulumi preview`) with two mistakes
    with pytest.raises(ConfigError) as caught:
        run(rotationSchedule="cron(5 0 * * ? *)", logRetentionDays="10")
    # THEN it stops before declaring anything, naming both keys
    assert caught.value.problems == (
        "keyrot:rotationSchedule: cron minutes must be 0, got '5'",
        "keyrot:logRetentionDays: must be one of CloudWatch Logs' values 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, "
        "365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653, got 10",
    )


def test_misspelled_setting_fails_the_program() -> None:
    with pytest.raises(ConfigError) as caught:
        run(gracePeriodHour="6")
    assert caught.value.problems == (
        "keyrot:gracePeriodHour: is not a keyrot setting; known settings: " + ", ".join(SETTING_KEYS),
    )


def test_dev_configuration_refuses_the_prod_account() -> None:
    # GIVEN dev's stack file but credentials for prod's account
    with pytest.raises(ConfigError) as caught:
        run("dev", account="222222222222")
    # THEN nothing is declared and every foreign principal is named
    assert all("but this stack deploys to" in p for p in caught.value.problems)
    assert any("arn:aws:iam::111111111111:role/chat-backend-dev" in p for p in caught.value.problems)
