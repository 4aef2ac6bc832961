"""A rotation function run at DEBUG (Lambda's application log level) writes no key, through any logger.

Lambda's Python runtime gives the root logger one handler and the configured level; at DEBUG, botocore would then
log GetSecretValue's and PutSecretValue's bodies, and keyrot's module loggers would reach that handler unscrubbed.
The function's logger is built here as the handler module builds it at import, inside that runtime.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count

import pytest

from keyrot.handlers import rotate as rotate_handler
from keyrot.observability import build_logger
from keyrot.redaction import THIRD_PARTY_LOGGERS
from lab.openai_standin.state import ISSUED_SECRETS
from lab.scenario import RotationWorld

_SERVICES = count()


@contextmanager
def lambda_runtime_logging(level: str) -> Iterator[io.StringIO]:
    """Root logging as Lambda's runtime sets it for an application log level; yields what its handler wrote."""
    root = logging.getLogger()
    watched = [logging.getLogger(name) for name in ("keyrot", *THIRD_PARTY_LOGGERS)]
    saved_root = (root.level, list(root.handlers))
    saved = [(logger, logger.level, list(logger.handlers)) for logger in watched]
    written = io.StringIO()
    runtime = logging.StreamHandler(written)
    runtime.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root.handlers[:] = [runtime]
    root.setLevel(level)
    for logger in watched:  # a fresh interpreter: nothing set yet
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
    try:
        yield written
    finally:
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]
        for logger, old_level, handlers in saved:
            logger.setLevel(old_level)
            logger.handlers[:] = handlers


@pytest.fixture
def debug_function(world: RotationWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The rotation function's settings, Lambda's log level DEBUG, and its logger built inside that runtime."""
    for name, value in {
        "KEYROT_ENVIRONMENT": world.environment,
        "KEYROT_ADMIN_SECRET_ARN": world.admin_secret_arn,
        "OPENAI_BASE_URL": world.openai.base_url,
        "KEYROT_VALIDATION_DELAY_SECONDS": "0.01",
        "KEYROT_VALIDATION_ATTEMPTS": "2",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
    }.items():
        monkeypatch.setenv(name, value)
    with lambda_runtime_logging("DEBUG") as written:
        # a service name of its own: Powertools configures a logger once per name and process
        monkeypatch.setattr(rotate_handler, "logger", build_logger(f"keyrot-rotation-debug-{next(_SERVICES)}"))
        yield written


def test_a_debug_level_rotation_writes_no_key_anywhere(
    world: RotationWorld, debug_function: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a key in service and the function at DEBUG
    arn = world.create_managed_secret("chat-backend")
    driver = world.driver(lambda event: rotate_handler.handler(event, None))
    assert driver.rotate(arn).succeeded
    # WHEN it rotates again (GetSecretValue of the admin key and the current key, PutSecretValue of the new key)
    run = driver.rotate(arn)
    # THEN the rotation worked at DEBUG, and neither Lambda's root handler nor the function's JSON log holds a key
    assert run.succeeded, run.failures
    assert rotate_handler.logger.log_level == logging.DEBUG
    runtime_log = debug_function.getvalue()
    function_log = capsys.readouterr().out
    assert '"rotation step succeeded"' in function_log
    assert ISSUED_SECRETS.found_in(runtime_log) == []
    assert ISSUED_SECRETS.found_in(function_log) == []
    # AND no third-party DEBUG line reached the runtime's handler
    assert not [line for line in runtime_log.splitlines() if line.startswith("DEBUG ") and " keyrot" not in line]


def test_keyrot_module_records_are_scrubbed_before_lambdas_handler_writes_them(debug_function: io.StringIO) -> None:
    # GIVEN the function's logging at DEBUG
    # WHEN a keyrot module logger (not the function's own logger) writes a key-shaped value
    planted = "sk-proj-" + "Q7" * 24
    logging.getLogger("keyrot.rotation.steps").debug("minted %s", planted)
    # THEN Lambda's root handler got the record, scrubbed
    written = debug_function.getvalue()
    assert "keyrot.rotation.steps minted sk-proj-" in written
    assert planted not in written
