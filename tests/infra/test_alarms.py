"""Alarms, the rotation-failure rule and the dashboard: what they watch and whom they tell."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from infra_harness import REPO_ROOT, Deployment, Recorded, keyrot_config

from keyrot import metric_names as m
from keyrot.pulumi.components.notifications import rotation_event_pattern
from keyrot.pulumi.runbook import DASHBOARD_ANCHORS, RUNBOOK_ANCHORS
from keyrot.settings import DEFAULT_RUNBOOK_URL

pytestmark = pytest.mark.timeout(120)

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def alarms(d: Deployment) -> dict[str, Recorded]:
    return {a.inputs["name"]: a for a in d.of_type(ALARM)}


def static(alarm: Recorded) -> tuple[Any, ...]:
    i = alarm.inputs
    return (
        i["namespace"],
        i["metricName"],
        i["dimensions"],
        i["statistic"],
        i["period"],
        i["evaluationPeriods"],
        i["datapointsToAlarm"],
        i["comparisonOperator"],
        i["threshold"],
        i["treatMissingData"],
    )


def test_environment_alarms(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    env = deployment.stack
    found = alarms(deployment)
    interval = config.monitor_interval_minutes * 60
    env_dims = {m.DIM_ENVIRONMENT: env}
    expected = {
        f"keyrot-{env}-rotation-lambda-errors": (
            "AWS/Lambda", "Errors", {"FunctionName": f"keyrot-{env}-rotation"}, "Sum", 300, 1, 1,
            "GreaterThanThreshold", 0, "notBreaching",
        ),
        f"keyrot-{env}-rotation-failed": (
            m.NAMESPACE, m.ROTATION_FAILED, env_dims, "Sum", 300, 1, 1, "GreaterThanThreshold", 0, "notBreaching",
        ),
        f"keyrot-{env}-monitor-lambda-errors": (
            "AWS/Lambda", "Errors", {"FunctionName": f"keyrot-{env}-monitor"}, "Sum", max(300, interval), 2, 2,
            "GreaterThanThreshold", 0, "notBreaching",
        ),
        # Three monitor intervals without a heartbeat; no data at all counts as not running.
        f"keyrot-{env}-monitor-not-running": (
            m.NAMESPACE, m.MONITOR_HEARTBEAT, env_dims, "SampleCount", interval, 3, 3, "LessThanThreshold", 1,
            "breaching",
        ),
        f"keyrot-{env}-daily-spend": (
            m.NAMESPACE, m.SPEND_TODAY_USD, env_dims, "Maximum", interval, 1, 1, "GreaterThanThreshold",
            config.daily_spend_limit_usd, "ignore",
        ),
        f"keyrot-{env}-unmanaged-key-requests": (
            m.NAMESPACE, m.UNMANAGED_KEY_REQUESTS, env_dims, "Sum", 3600, 3, 1, "GreaterThanThreshold", 0,
            "notBreaching",
        ),
        f"keyrot-{env}-retired-key-requests": (
            m.NAMESPACE, m.RETIRED_KEY_REQUESTS, env_dims, "Sum", 3600, 3, 1, "GreaterThanThreshold", 0,
            "notBreaching",
        ),
        f"keyrot-{env}-revocation-failed": (
            m.NAMESPACE, m.REVOCATION_FAILED, env_dims, "Sum", 300, 1, 1, "GreaterThanThreshold", 0, "notBreaching",
        ),
        # The Costs API failing in three runs in a row (the spend alarm is blind meanwhile); no failure, no data.
        f"keyrot-{env}-costs-read-failed": (
            m.NAMESPACE, m.COSTS_READ_FAILED, env_dims, "Sum", interval, 3, 3, "GreaterThanThreshold", 0,
            "notBreaching",
        ),
    }  # fmt: skip
    for name, spec in expected.items():
        assert static(found[name]) == spec, name


def test_one_key_age_alarm_covers_every_key(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    found = alarms(deployment)
    alarm = found[f"keyrot-{deployment.stack}-key-too-old"]
    assert static(alarm) == (
        m.NAMESPACE,
        # The oldest managed key's age: above the threshold exactly when some key is (the monitor publishes the
        # maximum over every key each run, tests/functional/monitor/test_key_age.py).
        m.OLDEST_KEY_AGE_HOURS,
        m.environment_dimensions(deployment.stack),
        "Maximum",
        config.monitor_interval_minutes * 60,
        1,
        1,
        "GreaterThanThreshold",
        # The longest gap between rotations plus a day of slack (dev weekly: 192, prod monthly: 744).
        config.rotation_max_interval_hours + 24,
        # A gauge: a run that publishes nothing keeps the alarm where it was, never turns it OK.
        "ignore",
    )
    expected = {"dev": 7 * 24 + 24, "prod": 30 * 24 + 24}[deployment.stack]
    assert alarm.inputs["threshold"] == expected
    # No key has an age alarm of its own any more (one metric and one alarm for the environment instead).
    assert not [name for name in found if name.endswith("-key-age")]


@pytest.mark.parametrize(("metric", "suffix"), [(m.REQUESTS, "requests"), (m.INPUT_TOKENS, "input-tokens")])
def test_anomaly_band_alarms_per_key(deployment: Deployment, metric: str, suffix: str) -> None:
    config = keyrot_config(deployment)
    found = alarms(deployment)
    for key in config.key_names:
        alarm = found[f"keyrot-{deployment.stack}-{key}-{suffix}-anomaly"].inputs
        assert alarm["comparisonOperator"] == "GreaterThanUpperThreshold"
        assert alarm["thresholdMetricId"] == "ad1"
        assert alarm["treatMissingData"] == "notBreaching"
        # An anomaly alarm has no static threshold, statistic or metric of its own.
        for absent in ("threshold", "statistic", "metricName", "namespace", "dimensions", "period"):
            assert absent not in alarm, absent
        m1, ad1 = alarm["metricQueries"]
        assert m1 == {
            "id": "m1",
            "returnData": True,
            "metric": {
                "namespace": m.NAMESPACE,
                "metricName": metric,
                "dimensions": m.key_dimensions(deployment.stack, key),
                "period": 3600,
                "stat": "Sum",
            },
        }
        assert ad1["id"] == "ad1"
        assert ad1["expression"] == f"ANOMALY_DETECTION_BAND(m1, {config.anomaly_band_width:g})"
        assert ad1["returnData"] is True


def test_no_alarm_reads_a_metric_published_only_for_the_dashboard(deployment: Deployment) -> None:
    # A stack without a dashboard does not publish these (tests/functional/monitor/test_key_age.py): no alarm may
    # depend on one, or it would go blind exactly where nobody looks at a dashboard either.
    read = set()
    for alarm in deployment.of_type(ALARM):
        queries = alarm.inputs.get("metricQueries") or [{"metric": alarm.inputs}]
        read |= {q["metric"]["metricName"] for q in queries if q.get("metric")}
    assert not read & m.DASHBOARD_ONLY
    assert {m.REQUESTS, m.INPUT_TOKENS, m.OLDEST_KEY_AGE_HOURS, m.SPEND_TODAY_USD} <= read


def test_every_alarm_notifies_oncall_on_alarm_and_ok(deployment: Deployment) -> None:
    topic = deployment.outputs["oncallTopicArn"]
    for alarm in deployment.of_type(ALARM):
        assert alarm.inputs["alarmActions"] == [topic], alarm.name
        assert alarm.inputs["okActions"] == [topic], alarm.name
        assert alarm.inputs["name"].startswith(f"keyrot-{deployment.stack}-")


def test_alarm_metrics_come_from_metric_names(deployment: Deployment) -> None:
    keyrot_metrics = {getattr(m, n) for n in dir(m) if n.isupper() and isinstance(getattr(m, n), str)}
    dimension_names = {m.DIM_ENVIRONMENT, m.DIM_KEY_NAME}
    for alarm in deployment.of_type(ALARM):
        queries = alarm.inputs.get("metricQueries") or [{"metric": alarm.inputs}]
        for query in queries:
            metric = query.get("metric")
            if not metric:
                continue
            if metric["namespace"] == m.NAMESPACE:
                assert metric["metricName"] in keyrot_metrics, alarm.name
                assert set(metric["dimensions"]) <= dimension_names, alarm.name
            else:
                assert metric["namespace"] == "AWS/Lambda" and set(metric["dimensions"]) == {"FunctionName"}


def _links(text: str) -> list[str]:
    return re.findall(re.escape(DEFAULT_RUNBOOK_URL) + r"#([a-z0-9-]+)", text)


def test_alarm_descriptions_say_what_to_do_and_link_the_runbook(deployment: Deployment) -> None:
    for alarm in deployment.of_type(ALARM):
        description = alarm.inputs["alarmDescription"]
        links = _links(description)
        assert len(links) == 1, alarm.name
        assert links[0] in RUNBOOK_ANCHORS, alarm.name
        assert description.endswith(f"#{links[0]}"), alarm.name
        assert len(description) <= 1024  # CloudWatch's limit


def test_every_runbook_anchor_is_linked_by_an_alarm_or_the_dashboard(dev: Deployment) -> None:
    # GIVEN the dev stack (it declares guardrails, so every kind of alarm is there)
    by_alarms = {_links(a.inputs["alarmDescription"])[0] for a in dev.of_type(ALARM)}
    (board,) = dev.of_type("aws:cloudwatch/dashboard:Dashboard")
    by_dashboard = set(_links(board.inputs["dashboardBody"]))
    # THEN every section keyrot promises is reached from what on-call sees; the dashboard's links are its own
    assert by_alarms | set(DASHBOARD_ANCHORS) == set(RUNBOOK_ANCHORS)
    assert set(DASHBOARD_ANCHORS) <= by_dashboard


def _github_anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


def test_runbook_has_a_section_for_every_anchor() -> None:
    runbook = REPO_ROOT / "docs" / "runbook.md"
    if not runbook.exists():
        pytest.skip("docs/runbook.md is not written yet")
    headings = {_github_anchor(line.lstrip("#")) for line in runbook.read_text().splitlines() if line.startswith("#")}
    assert set(RUNBOOK_ANCHORS) <= headings, set(RUNBOOK_ANCHORS) - headings


# --- rotation-failure rule --------------------------------------------------------------------------------------


def test_rotation_failure_rule_matches_only_this_environments_secrets(deployment: Deployment) -> None:
    (rule,) = deployment.of_type("aws:cloudwatch/eventRule:EventRule")
    pattern = json.loads(rule.inputs["eventPattern"])
    # the managed keys' secrets, and the admin-key secret when keyrot rotates it too
    rotated_admin = keyrot_config(deployment).admin_key_rotation is not None
    arns = sorted(
        [*deployment.outputs["keySecretArns"].values(), *[deployment.outputs["adminKeySecretArn"]] * rotated_admin]
    )
    assert pattern == {
        "source": ["aws.secretsmanager"],
        "detail-type": ["AWS Service Event via CloudTrail"],
        "detail": {
            "eventSource": ["secretsmanager.amazonaws.com"],
            "eventName": ["RotationFailed", "RotationAbandoned"],
            "$or": [
                {"additionalEventData": {"SecretId": arns}},
                {"serviceEventDetails": {"secretId": arns}},
            ],
        },
    }
    assert rule.inputs["name"] == f"keyrot-{deployment.stack}-rotation-failures"


def _matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """A small EventBridge matcher (exact values, nested objects, $or) for the pattern above."""
    for key, expected in pattern.items():
        if key == "$or":
            if not any(_matches(option, event) for option in expected):
                return False
        elif isinstance(expected, dict):
            if not isinstance(event.get(key), dict) or not _matches(expected, event[key]):
                return False
        elif event.get(key) not in expected:
            return False
    return True


def test_rule_pattern_on_sample_events() -> None:
    ours = "arn:aws:secretsmanager:us-east-1:111111111111:secret:keyrot/dev/chat-backend-AbCdEf"
    pattern = rotation_event_pattern([ours])
    # GIVEN the shape of a real RotationFailed CloudTrail service event
    event = {
        "source": "aws.secretsmanager",
        "detail-type": "AWS Service Event via CloudTrail",
        "detail": {
            "eventSource": "secretsmanager.amazonaws.com",
            "eventName": "RotationFailed",
            "errorMessage": "Error when executing lambda ... during createSecret step",
            "additionalEventData": {"SecretId": ours},
        },
    }
    assert _matches(pattern, event)
    abandoned = json.loads(json.dumps(event))
    abandoned["detail"]["eventName"] = "RotationAbandoned"
    assert _matches(pattern, abandoned)
    succeeded = json.loads(json.dumps(event))
    succeeded["detail"]["eventName"] = "RotationSucceeded"
    assert not _matches(pattern, succeeded)
    other_env = json.loads(json.dumps(event))
    other_env["detail"]["additionalEventData"]["SecretId"] = ours.replace("/dev/", "/prod/")
    assert not _matches(pattern, other_env)


def test_rule_notifies_oncall_with_a_short_message(deployment: Deployment) -> None:
    (target,) = deployment.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert target.inputs["arn"] == deployment.outputs["oncallTopicArn"]
    assert target.inputs["rule"] == f"keyrot-{deployment.stack}-rotation-failures"
    transformer = target.inputs["inputTransformer"]
    assert transformer["inputPaths"] == {
        "eventName": "$.detail.eventName",
        "secretId": "$.detail.additionalEventData.SecretId",
        "errorMessage": "$.detail.errorMessage",
        "time": "$.time",
    }
    message = json.loads(transformer["inputTemplate"])  # a JSON string literal
    assert message.startswith(f"keyrot {deployment.stack}: <eventName> for <secretId> at <time>.")
    assert message.endswith(f"{DEFAULT_RUNBOOK_URL}#rotation-failed")
    assert len(message) < 400


# --- dashboard --------------------------------------------------------------------------------------------------


def test_dashboard_shows_usage_spend_age_rotations_and_alarms(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    (board,) = deployment.of_type("aws:cloudwatch/dashboard:Dashboard")
    assert board.inputs["dashboardName"] == f"keyrot-{deployment.stack}"
    body = json.loads(board.inputs["dashboardBody"])
    titles = {w["properties"].get("title") for w in body["widgets"]}
    assert {"Requests per key", "Spend today (USD)", "Key age (hours)", "Rotations", "Alarms"} <= titles
    metrics = {w["properties"]["title"]: w["properties"]["metrics"] for w in body["widgets"] if w["type"] == "metric"}
    for key in config.key_names:
        assert [m.NAMESPACE, m.REQUESTS, m.DIM_ENVIRONMENT, deployment.stack, m.DIM_KEY_NAME, key, {"label": key}] in (
            metrics["Requests per key"]
        )
    assert {row[1] for row in metrics["Rotations"]} >= {m.ROTATION_STARTED, m.ROTATION_SUCCEEDED, m.ROTATION_FAILED}
    (alarm_widget,) = [w for w in body["widgets"] if w["properties"].get("title") == "Alarms"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(a.outputs["arn"] for a in deployment.of_type(ALARM))
    for widget in body["widgets"]:
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == deployment.region


def _widgets(d: Deployment) -> dict[str, dict[str, Any]]:
    (board,) = d.of_type("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(board.inputs["dashboardBody"])
    return {
        w["properties"].get("title") or w["properties"].get("markdown", "").split("\n", 1)[0]: w
        for w in body["widgets"]
    }


def test_the_dashboard_shows_the_spend_alarm_beside_openais_hard_limit(deployment: Deployment) -> None:
    # GIVEN the dashboard on-call opens when spend climbs
    config = keyrot_config(deployment)
    widgets = _widgets(deployment)
    alarm = widgets["Daily spend alarm (keyrot)"]
    text = widgets[f"### OpenAI spend limits ({deployment.stack})"]
    # THEN the monitor's daily-spend alarm sits in the same row as OpenAI's hard monthly limit, as declared
    assert alarm["properties"]["alarms"] == [
        alarms(deployment)[f"keyrot-{deployment.stack}-daily-spend"].outputs["arn"]
    ]
    assert alarm["width"] + text["width"] == 24 and body_order(deployment, alarm) + 1 == body_order(deployment, text)
    markdown = text["properties"]["markdown"]
    if config.guardrails is None:
        assert "No guardrails declared" in markdown
    else:
        limit = config.guardrails.spend_limit_cents / 100
        assert f"hard monthly limit: **${limit:,.2f}**" in markdown
        for spend_alert in config.guardrails.spend_alerts:
            assert f"${spend_alert.threshold_cents / 100:,.2f}" in markdown
    # AND it says where the month's spend against it is, and what to do when it is reached
    assert f"keyrot status --env {deployment.stack}" in markdown and "#hard-spend-limit-reached" in markdown


def test_the_dashboard_graphs_the_months_spend_against_the_declared_hard_limit(deployment: Deployment) -> None:
    # GIVEN each stack (dev declares a hard limit, prod declares no guardrails)
    config = keyrot_config(deployment)
    widget = _widgets(deployment).get("Spend this month (USD)")
    if config.guardrails is None or config.guardrails.spend_limit_cents is None:
        # THEN without a declared limit there is no month's spend to graph
        assert widget is None
        return
    # THEN the guardrails check's month-to-date spend is drawn under a line at the declared limit
    assert widget is not None
    properties = widget["properties"]
    assert [row[:4] for row in properties["metrics"]] == [
        [m.NAMESPACE, m.SPEND_MONTH_TO_DATE_USD, m.DIM_ENVIRONMENT, deployment.stack]
    ]
    assert properties["annotations"]["horizontal"] == [
        {"label": "OpenAI hard limit", "value": config.guardrails.spend_limit_cents / 100}
    ]
    # AND the guardrails widget counts the messages on-call was sent
    guardrails = _widgets(deployment)["OpenAI guardrails"]["properties"]["metrics"]
    assert m.GUARDRAILS_NOTIFIED in [row[1] for row in guardrails]


def body_order(d: Deployment, widget: dict[str, Any]) -> int:
    (board,) = d.of_type("aws:cloudwatch/dashboard:Dashboard")
    return json.loads(board.inputs["dashboardBody"])["widgets"].index(widget)


def test_the_dashboard_shows_the_monitors_failed_parts_costs_and_set_aside_buckets(deployment: Deployment) -> None:
    widgets = _widgets(deployment)
    parts = widgets["Monitor parts failed"]["properties"]["metrics"]
    # THEN failed parts are one line per Part (whatever parts the monitor has), beside the Costs API failures
    (search,) = [row[0]["expression"] for row in parts if isinstance(row[0], dict)]
    assert search == (
        f'SEARCH(\'{{{m.NAMESPACE},{m.DIM_ENVIRONMENT},{m.DIM_PART}}} MetricName="{m.MONITOR_PART_FAILED}" '
        f"{m.DIM_ENVIRONMENT}=\"{deployment.stack}\"', 'Sum', 3600)"
    )
    assert [m.NAMESPACE, m.COSTS_READ_FAILED, m.DIM_ENVIRONMENT, deployment.stack] in [row[:4] for row in parts]
    set_aside = widgets["Usage buckets set aside"]["properties"]
    assert set_aside["stat"] == "Maximum"  # a gauge
    assert [row[1] for row in set_aside["metrics"]] == [m.USAGE_BUCKETS_SET_ASIDE]
