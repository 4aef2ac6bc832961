"""CLI tests: the real `keyrot` typer app against moto, the OpenAI stand-in and the emulated RotateSecret.

RotateSecret runs the real rotation handler in the background (as Secrets Manager invokes the Lambda); its JSON log
lines are captured instead of printed (they would land in the CLI's captured stdout) and, when the rotation log
group exists, written to CloudWatch Logs, where `keyrot rotate` reads them.

Every CLI invocation is checked for leaks: no key the stand-in ever issued may appear in stdout or stderr.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner, Result

from keyrot import inventory, observability
from keyrot.cli import context as cli_context
from keyrot.cli import interaction
from keyrot.cli.app import app
from keyrot.cli.follow import rotation_log_group
from keyrot.constants import ENV_OPENAI_ADMIN_BASE_URL
from keyrot.handlers import rotate as rotate_handler
from lab.rotation_service import RotationService, installed
from lab.scenario import ROTATION_LAMBDA_ARN, RotationWorld

REGION = "us-east-1"


@dataclass
class LambdaLogs:
    """The rotation function's log lines; forwarded to CloudWatch Logs once `create_group()` was called."""

    lines: list[str] = field(default_factory=list)
    logs_client: Any = None
    group: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create_group(self, environment: str = "dev") -> str:
        self.logs_client = boto3.client("logs", region_name=REGION)
        self.group = rotation_log_group(environment)
        self.logs_client.create_log_group(logGroupName=self.group)
        self.logs_client.create_log_stream(logGroupName=self.group, logStreamName="rotation")
        return self.group

    def write(self, line: str, created: float) -> None:
        with self._lock:
            self.lines.append(line)
            if self.group is not None:
                self.logs_client.put_log_events(
                    logGroupName=self.group,
                    logStreamName="rotation",
                    logEvents=[{"timestamp": int(created * 1000), "message": line}],
                )


@pytest.fixture(autouse=True)
def lambda_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaLogs]:
    sink = LambdaLogs()

    def emit(handler: logging.StreamHandler, record: logging.LogRecord) -> None:  # type: ignore[type-arg]
        sink.write(handler.format(record), record.created)

    monkeypatch.setattr(observability._CurrentStdoutHandler, "emit", emit)
    inventory.clear_cache()
    yield sink
    inventory.clear_cache()


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdin is not a terminal unless a test says so (as in CI, cron and pipes)."""
    monkeypatch.setattr(interaction, "stdin_is_tty", lambda: False)


@pytest.fixture
def rotation(world: RotationWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[RotationService]:
    """RotateSecret answered as Secrets Manager does, invoking the real rotation handler with the Lambda's settings."""
    monkeypatch.setenv("KEYROT_ENVIRONMENT", world.environment)
    monkeypatch.setenv("KEYROT_ADMIN_SECRET_ARN", world.admin_secret_arn)
    monkeypatch.setenv("OPENAI_BASE_URL", world.openai.base_url)
    monkeypatch.setenv("KEYROT_VALIDATION_DELAY_SECONDS", "0.01")
    monkeypatch.setenv("KEYROT_VALIDATION_ATTEMPTS", "2")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # EMF lines are printed, not logged
    # single_metric prints its EMF line anyway: Lambda's stdout, which must not land in the CLI's captured stdout
    monkeypatch.setattr(observability, "single_metric", _unpublished_metric)
    service = RotationService()
    service.register(ROTATION_LAMBDA_ARN, lambda event: rotate_handler.handler(event, None))
    with installed(service):
        yield service


@contextmanager
def _unpublished_metric(**_: Any) -> Iterator[None]:
    yield None


class Cli:
    """Runs `keyrot ARGS...` and checks that no key material reached stdout or stderr."""

    def __init__(self, world: RotationWorld) -> None:
        self.world = world
        self.runner = CliRunner()
        self.results: list[Result] = []

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        # Output captured by the runner is not a terminal: as in a pipe or a CI log, nothing may be wrapped.
        result = self.runner.invoke(app, list(args), input=input, env=env)
        self.results.append(result)
        self.assert_no_leak(result)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"unexpected exception: {result.exception!r}\n{result.output}")
        return result

    def assert_no_leak(self, result: Result) -> None:
        texts = (result.stdout, result.stderr, str(result.exception or ""))
        for value in self.world.openai.state.minted_values:
            for text in texts:
                assert value not in text, "a key value reached the CLI output"


@pytest.fixture
def cli(world: RotationWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    monkeypatch.setenv(ENV_OPENAI_ADMIN_BASE_URL, world.openai.base_url)
    runner = Cli(world)
    yield runner
    for result in runner.results:  # keys minted after an invocation are checked too
        runner.assert_no_leak(result)


@pytest.fixture
def deny(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """deny("GetSecretValue"): every session the CLI creates answers that operation with AccessDeniedException."""
    denied: set[str] = set()
    original = cli_context.new_session

    def refuse(model: Any, **_: Any) -> None:
        if model.name in denied:
            message = f"User: arn:aws:iam::123456789012:user/oncall is not authorized to perform: {model.name}"
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": message}}, model.name)

    def session(profile: str | None, region: str | None) -> Any:
        created = original(profile, region)
        created.events.register("before-call", refuse)
        return created

    monkeypatch.setattr(cli_context, "new_session", session)
    return denied.add


def rotated(world: RotationWorld, key_name: str, times: int = 1) -> str:
    """A managed secret rotated `times` times through the engine (setup, not under test); returns its ARN."""
    arn = world.create_managed_secret(key_name)
    for _ in range(times):
        run = world.driver().rotate(arn)
        assert run.succeeded, run.failures
    return arn
