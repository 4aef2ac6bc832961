"""Secret hygiene, suite-wide: a test fails if a key the OpenAI stand-in issued shows up where keys must never go.

Every admin key and every minted key any stand-in hands out is registered process-wide
(`lab.openai_standin.state.ISSUED_SECRETS`). After each phase of each test (setup, call, teardown) this
plugin looks for those values in:

- the captured stdout, stderr and log text of that phase (the report's sections);
- whatever the test read itself through capsys/capfd (`readouterr`), which never reaches the report;
- every log record emitted during the phase: message, arguments, extra fields, exception text;
- the failure text (the report's longrepr);
- the output and exception of every click/typer `CliRunner.invoke`;
- the message of every keyrot exception created (`KeyrotError` and its subclasses, whether raised, caught, logged
  or swallowed) and of every exception a test catches with `pytest.raises`;
- what moto holds in memory: SNS messages, SQS messages, CloudWatch metric data, CloudWatch Logs events and SSM
  String parameters (at the end of the call phase, and whenever moto resets its backends, as a `mock_aws` ends).

A leak turns the phase's report into a failure naming where the key appeared. The report is scrubbed first, so
pytest never prints the key itself. Registered from tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from keyrot.redaction import redact_key
from lab.openai_standin.state import ISSUED_SECRETS

HYGIENE_HEADER = "secret hygiene: key material issued by the OpenAI stand-in appeared in"

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))) | {
    "message",
    "asctime",
}


@dataclass(frozen=True)
class Leak:
    source: str
    value: str

    def describe(self) -> str:
        return f"{self.source} ({shown(self.value)})"


def shown(value: str) -> str:
    """How a leaked value is named in a report: enough to recognise its kind, never the value."""
    return redact_key(value)


def find_leaks(source: str, text: str) -> list[Leak]:
    return [Leak(source, value) for value in ISSUED_SECRETS.found_in(text)]


def scrub_issued(text: str) -> str:
    for value in ISSUED_SECRETS.found_in(text):
        text = text.replace(value, shown(value))
    return text


# --- evidence gathered while a test runs -----------------------------------------------------------------------


@dataclass
class _Collector:
    """Texts seen during the current phase of one test, from sources that leave no trace in the report."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, source: str, text: str) -> None:
        if "sk-" in text:  # every issued secret starts with sk-: skip the rest cheaply
            with self.lock:
                self.texts.append((source, text))

    def drain(self) -> list[tuple[str, str]]:
        with self.lock:
            texts, self.texts = self.texts, []
        return texts


_collectors: list[_Collector] = []  # a stack: pytester's in-process runs nest a session inside a test
_installed = threading.Lock()
_patched: dict[str, Any] = {}
_reported_moto: set[Leak] = set()  # moto data outlives a test until the next reset: report each leak once


def _record(source: str, text: str) -> None:
    if _collectors:
        _collectors[-1].add(source, text)


class _RecordHandler(logging.Handler):
    """Sees every log record that reaches the root logger, whatever pytest's own log capture does."""

    def emit(self, record: logging.LogRecord) -> None:
        if not _collectors:
            return
        parts = [_message(record)]
        parts.extend(f"{name}={value}" for name, value in vars(record).items() if name not in _RECORD_ATTRIBUTES)
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(logging.Formatter().formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        _record("a log record", "\n".join(parts))


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):  # a record whose arguments do not fit its format
        return f"{record.msg} {record.args}"


_handler = _RecordHandler(level=logging.NOTSET)


# --- patches that see what tests read or produce out of the report's sight --------------------------------------


def _install_patches() -> None:
    with _installed:
        if _patched:
            return
        _patch_readouterr()
        _patch_cli_runner()
        _patch_exceptions()
        _patch_moto_reset()
        _patched["done"] = True


def _patch_readouterr() -> None:
    original = pytest.CaptureFixture.readouterr

    def readouterr(self: Any) -> Any:
        result = original(self)
        _record("output the test read with capsys/capfd", f"{result.out!s}\n{result.err!s}")
        return result

    pytest.CaptureFixture.readouterr = readouterr  # type: ignore[method-assign]


def _patch_cli_runner() -> None:
    try:
        from click.testing import CliRunner
    except ImportError:  # pragma: no cover - click comes with typer
        return
    original = CliRunner.invoke

    def invoke(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        texts = [result.output]
        for name in ("stdout", "stderr"):
            try:
                texts.append(getattr(result, name))
            except ValueError:  # stderr not captured separately
                continue
        if result.exception is not None:
            texts.append(f"{type(result.exception).__name__}: {result.exception}")
        _record("CLI output (CliRunner)", "\n".join(texts))
        return result

    CliRunner.invoke = invoke  # type: ignore[method-assign]


def _patch_exceptions() -> None:
    from _pytest._code.code import ExceptionInfo

    from keyrot.errors import KeyrotError

    original_init = KeyrotError.__init__

    def init(self: KeyrotError, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        _record("an exception message", f"{type(self).__name__}: {self}")

    KeyrotError.__init__ = init  # type: ignore[method-assign]
    original_fill = ExceptionInfo.fill_unfilled

    def fill_unfilled(self: Any, exc_info: Any) -> None:
        original_fill(self, exc_info)
        value = exc_info[1]
        _record("an exception caught with pytest.raises", f"{type(value).__name__}: {value}")

    ExceptionInfo.fill_unfilled = fill_unfilled  # type: ignore[method-assign]


def _patch_moto_reset() -> None:
    from moto.core.base_backend import BackendDict

    original = BackendDict.reset.__func__  # type: ignore[attr-defined]

    def reset(cls: Any) -> None:
        for source, text in moto_texts():
            _record(source, text)
        original(cls)

    BackendDict.reset = classmethod(reset)  # type: ignore[method-assign, assignment]


# --- what moto holds ----------------------------------------------------------------------------------------------


def _backends(module: str, name: str) -> Iterator[Any]:
    """Every region backend created so far for a moto service, without importing services nobody used."""
    loaded = sys.modules.get(module)
    backends = getattr(loaded, name, None) if loaded else None
    if backends is None:
        return
    for regions in list(backends.values()):
        yield from list(regions.values())


def moto_texts() -> Iterator[tuple[str, str]]:
    """(source, text) for each kind of data moto holds that must never carry a key."""
    sns: list[str] = []
    for backend in _backends("moto.sns.models", "sns_backends"):
        for topic in list(backend.topics.values()):
            sns.extend(
                f"{subject}\n{message}\n{attributes}" for _, message, subject, attributes, _ in topic.sent_notifications
            )
        sns.extend(str(message) for message in list(getattr(backend, "sms_messages", {}).values()))
    yield "an SNS message", "\n".join(sns)
    sqs: list[str] = []
    for backend in _backends("moto.sqs.models", "sqs_backends"):
        for queue in list(backend.queues.values()):
            sqs.extend(f"{message.body}\n{message.message_attributes}" for message in list(queue._messages))
    yield "an SQS message", "\n".join(sqs)
    metrics: list[str] = []
    for backend in _backends("moto.cloudwatch.models", "cloudwatch_backends"):
        for datum in list(backend.metric_data):
            dimensions = " ".join(f"{d.name}={d.value}" for d in datum.dimensions)
            metrics.append(f"{datum.namespace} {datum.name} {dimensions} {getattr(datum, 'unit', '')}")
    yield "a CloudWatch metric", "\n".join(metrics)
    events: list[str] = []
    for backend in _backends("moto.logs.models", "logs_backends"):
        for group in list(backend.groups.values()):
            for stream in list(group.streams.values()):
                events.extend(str(event.message) for event in list(stream.events))
    yield "a CloudWatch Logs event", "\n".join(events)
    parameters: list[str] = []
    for backend in _backends("moto.ssm.models", "ssm_backends"):
        for versions in list(backend._parameters.values()):
            parameters.extend(str(p.value) for p in list(versions) if getattr(p, "type", "") != "SecureString")
    yield "an SSM parameter", "\n".join(parameters)


def _moto_leaks() -> list[Leak]:
    leaks = [leak for source, text in moto_texts() for leak in find_leaks(source, text)]
    return _first_report(leaks)


def _first_report(leaks: list[Leak]) -> list[Leak]:
    fresh = [leak for leak in leaks if leak not in _reported_moto]
    _reported_moto.update(fresh)
    return fresh


# --- pytest hooks -------------------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    _install_patches()
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
        config.stash[_OWNS_HANDLER] = True


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_OWNS_HANDLER, False):
        logging.getLogger().removeHandler(_handler)


_OWNS_HANDLER = pytest.StashKey[bool]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _collectors.append(_Collector())
    try:
        yield
    finally:
        _collectors.pop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    leaks: list[Leak] = []
    for name, content in report.sections:
        if name.endswith(f" {call.when}"):
            leaks += find_leaks(name.lower(), content)
    if _collectors:
        for source, text in _collectors[-1].drain():
            found = find_leaks(source, text)
            leaks += _first_report(found) if source in _MOTO_SOURCES else found
    if call.when == "call":
        leaks += _moto_leaks()
    if report.longrepr is not None:
        leaks += find_leaks("the failure text", report.longreprtext)
    if leaks:
        _fail(report, leaks)


_MOTO_SOURCES = frozenset(
    {"an SNS message", "an SQS message", "a CloudWatch metric", "a CloudWatch Logs event", "an SSM parameter"}
)


def _fail(report: pytest.TestReport, leaks: list[Leak]) -> None:
    """Fail the report, scrubbed so that pytest prints no key."""
    unique: dict[tuple[str, str], Leak] = {}
    for leak in leaks:
        unique.setdefault((leak.source, leak.value), leak)
    lines = [f"{HYGIENE_HEADER}:"] + [f"  - {leak.describe()}" for leak in unique.values()]
    message = "\n".join(lines)
    previous = scrub_issued(report.longreprtext) if report.longrepr is not None else ""
    report.sections = [(name, scrub_issued(content)) for name, content in report.sections]
    report.longrepr = f"{previous}\n\n{message}" if previous else message
    report.outcome = "failed"


def leak_sources(text: str) -> list[str]:
    """The sources named in a hygiene failure message (for the checker's own tests)."""
    return [line.strip()[2:].rsplit(" (", 1)[0] for line in text.splitlines() if line.strip().startswith("- ")]
