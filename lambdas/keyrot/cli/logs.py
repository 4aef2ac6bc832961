"""The CLI's logging: quiet by default; with --debug, keyrot's own loggers on stderr, scrubbed, and nothing else.

Third-party loggers stay at WARNING even under --debug: botocore's DEBUG lines carry response bodies (the current
key from GetSecretValue, the admin key read by audit). The scrubbing filter sits on the handler, so it sees the
records of every keyrot module logger, not only those logged on `keyrot` itself.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from keyrot.redaction import ScrubKeyMaterial, guard_logging

PACKAGE = "keyrot"
DEBUG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at emit time (the terminal; a test runner's capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _OwnOrWarning(logging.Filter):
    """keyrot's records at any level; anything else only from WARNING up."""

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == PACKAGE or record.name.startswith(f"{PACKAGE}.")
        return own or record.levelno >= logging.WARNING


def configure(debug: bool) -> Callable[[], None]:
    """Set up logging for one CLI invocation; returns the function that undoes it (call it when the command ends)."""
    guard_logging(PACKAGE)
    own = logging.getLogger(PACKAGE)
    root = logging.getLogger()
    previous_level = own.level
    installed: list[tuple[logging.Logger, logging.Handler]] = []
    if debug:
        handler = _CurrentStderrHandler()
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(logging.Formatter(DEBUG_FORMAT))
        handler.addFilter(ScrubKeyMaterial())
        handler.addFilter(_OwnOrWarning())
        own.setLevel(logging.DEBUG)
        root.addHandler(handler)  # keyrot's records reach it by propagation; the root level stays as it was
        installed.append((root, handler))
    else:
        quiet = logging.NullHandler()  # no "last resort" printing of keyrot's warnings: the CLI reports outcomes
        own.addHandler(quiet)
        installed.append((own, quiet))

    def undo() -> None:
        for logger, added in installed:
            logger.removeHandler(added)
        own.setLevel(previous_level)

    return undo
