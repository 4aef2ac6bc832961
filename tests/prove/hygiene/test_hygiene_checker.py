"""The secret-hygiene plugin catches a key leaked through every channel it watches, and stays quiet otherwise.

One pytest run in a subprocess (so its keys, log handlers and moto state stay out of this process) with a test per
channel. Each inner test gets its key from a stand-in organisation, exactly as the suite's tests do, and writes it
to a file so this test can prove the values never appear in the inner run's own output either.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.hygiene import HYGIENE_HEADER

REPO_ROOT = Path(__file__).resolve().parents[3]

INNER_TESTS = '''
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import boto3
import click
from click.testing import CliRunner
from moto import mock_aws

from lab.openai_standin import OpenAIStandIn
from lab.openai_standin.state import OrganizationState

ISSUED = Path(__file__).with_name("issued.txt")


def issue() -> str:
    """A key minted the way the stand-in mints them (so it is in the process-wide registry)."""
    state = OrganizationState()
    project = state.add_project()
    _, key = state.create_service_account(project, "keyrot:dev:app:token", with_key=True, expires_in=None)
    with ISSUED.open("a") as issued:
        issued.write(key.value + "\\n")
    return key.value


def test_clean_use_of_keys_passes(capsys):
    with OpenAIStandIn() as standin:
        admin = standin.state.add_admin_key()
        ISSUED.open("a").write(admin + "\\n")
        print(f"the stand-in listens on {standin.base_url}; key id only: {issue()[:6]}")
        logging.getLogger("keyrot.demo").warning("minted a key (value withheld)")
    assert "sk-" in capsys.readouterr().out


def test_print_leak():
    print(f"the key is {issue()}")


def test_stderr_leak():
    sys.stderr.write(f"debug: {issue()}\\n")


def test_log_message_leak():
    logging.getLogger("keyrot.demo").warning("using key %s", issue())


def test_log_extra_leak():
    logging.getLogger("keyrot.demo").warning("minted", extra={"api_key": issue()})


def test_failure_text_leak():
    assert issue() == "something else"


def test_output_read_with_capsys_leak(capsys):
    print(issue())
    captured = capsys.readouterr()
    assert captured.out


def test_sns_message_leak():
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        topic = sns.create_topic(Name="oncall")["TopicArn"]
        sns.publish(TopicArn=topic, Subject="rotated", Message=f"new key {issue()}")


def test_cloudwatch_metric_leak():
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        cloudwatch.put_metric_data(
            Namespace="Keyrot",
            MetricData=[{"MetricName": "Requests", "Value": 1, "Dimensions": [{"Name": "Key", "Value": issue()}]}],
        )


def test_cli_output_leak():
    @click.command()
    def show() -> None:
        click.echo(issue())

    result = CliRunner().invoke(show)
    assert result.exit_code == 0


def test_sqs_message_leak():
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="oncall-copy")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody=f"new key {issue()}")


def test_cloudwatch_logs_event_leak():
    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName="/aws/lambda/keyrot-dev-rotation")
        logs.create_log_stream(logGroupName="/aws/lambda/keyrot-dev-rotation", logStreamName="s")
        logs.put_log_events(
            logGroupName="/aws/lambda/keyrot-dev-rotation",
            logStreamName="s",
            logEvents=[{"timestamp": int(time.time() * 1000), "message": f"minted {issue()}"}],
        )


def test_ssm_parameter_leak():
    with mock_aws():
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/keyrot/dev/monitor-state", Value="last=" + issue(), Type="String"
        )


def test_swallowed_keyrot_exception_leak():
    from keyrot.errors import KeyrotError

    try:
        raise KeyrotError(f"rotation failed for {issue()}")
    except KeyrotError:
        pass  # swallowed: never printed, never logged, but its message carried the key


def test_exception_caught_with_pytest_raises_leak():
    import pytest

    with pytest.raises(ValueError):
        raise ValueError(f"bad key {issue()}")
'''

EXPECTED_SOURCES = {
    "test_print_leak": "captured stdout call",
    "test_stderr_leak": "captured stderr call",
    "test_log_message_leak": "a log record",
    "test_log_extra_leak": "a log record",
    "test_failure_text_leak": "the failure text",
    "test_output_read_with_capsys_leak": "output the test read with capsys/capfd",
    "test_sns_message_leak": "an SNS message",
    "test_cloudwatch_metric_leak": "a CloudWatch metric",
    "test_cli_output_leak": "CLI output (CliRunner)",
    "test_sqs_message_leak": "an SQS message",
    "test_cloudwatch_logs_event_leak": "a CloudWatch Logs event",
    "test_ssm_parameter_leak": "an SSM parameter",
    "test_swallowed_keyrot_exception_leak": "an exception message",
    "test_exception_caught_with_pytest_raises_leak": "an exception caught with pytest.raises",
}


def _block(output: str, test_name: str) -> str:
    """The failure section pytest prints for `test_name`."""
    start = output.index(f"_ {test_name} _")
    following = output.find("\n____", start + 1)
    summary = output.find("short test summary info", start)
    ends = [end for end in (following, summary) if end != -1]
    return output[start : min(ends) if ends else len(output)]


def test_a_leak_through_any_watched_channel_fails_and_is_never_shown(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN one inner test per channel that leaks a stand-in key, and one that only uses keys
    pytester.makepyfile(test_leaks=INNER_TESTS)
    monkeypatch.setenv("PYTHONPATH", f"{REPO_ROOT / 'lambdas'}:{REPO_ROOT}")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # WHEN the inner suite runs with the hygiene plugin
    result = pytester.runpytest_subprocess("-p", "tests.support.hygiene", "-p", "no:cacheprovider", "-rA", "-v")
    output = result.stdout.str()
    # THEN exactly the leaking tests fail, each naming the channel its key went through
    result.assert_outcomes(passed=1, failed=len(EXPECTED_SOURCES))
    assert "PASSED test_leaks.py::test_clean_use_of_keys_passes" in output
    for test_name, source in EXPECTED_SOURCES.items():
        block = _block(output, test_name)
        assert HYGIENE_HEADER in block, test_name
        assert f"- {source} (sk-" in block, (test_name, block)
    # AND no report shows a raw key, not even the failing assertion's own text
    issued = (pytester.path / "issued.txt").read_text().split()
    assert len(issued) == len(EXPECTED_SOURCES) + 2  # one key per leaking test, two in the clean one
    everything = output + result.stderr.str()
    shown = [value for value in issued if value in everything]
    assert shown == [], f"{len(shown)} raw key value(s) printed by the inner run"
    assert everything.count("…(redacted)") >= len(EXPECTED_SOURCES)
