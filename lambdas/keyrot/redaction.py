"""Keep key material out of every text keyrot produces."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# Shapes of OpenAI secret keys (sk-, sk-proj-, sk-svcacct-, sk-admin-, ...), including OpenAI's own masked echoes
# such as "sk-abc***xyz". Ids (key_..., svc_acct_..., proj_...) are not secret and are left alone.
_KEY_SHAPE = re.compile(r"sk-[A-Za-z0-9_\-*.]{6,}")
_REDACTED_PREFIX_LENGTH = 8


def redact_key(value: str) -> str:
    """A display form of a key: its first characters (the type prefix at most) and an ellipsis."""
    if len(value) <= _REDACTED_PREFIX_LENGTH * 2:
        return "…(redacted)"
    return f"{value[:_REDACTED_PREFIX_LENGTH]}…(redacted)"


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with every known secret value and every key-shaped token replaced by a redacted form."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, redact_key(secret))
    return _KEY_SHAPE.sub(lambda match: redact_key(match.group(0)), text)


# --- logging ------------------------------------------------------------------------------------------------------

# Libraries whose DEBUG records carry request and response bodies (botocore logs GetSecretValue's SecretString and
# PutSecretValue's request): never below WARNING, whatever level the root logger or the operator chose.
THIRD_PARTY_LOGGERS: tuple[str, ...] = ("botocore", "boto3", "urllib3", "s3transfer", "requests")
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))) | {
    "message",
    "asctime",
}


class ScrubKeyMaterial(logging.Filter):
    """Rewrite key-shaped tokens in a record (message, string extras, formatted traceback) before it is written.

    Put it on handlers: a filter on a logger sees only the records logged on that very logger, not its children's.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format: keep both, scrubbed
            message = f"{record.msg} {record.args}"
        cleaned = scrub(message)
        if cleaned != message or not isinstance(record.msg, str):
            record.msg, record.args = cleaned, None
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, scrub(value))
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class _ScrubOnly(logging.Handler):
    """Writes nothing: its filter scrubs each record in place before the handlers of ancestor loggers see it."""

    def emit(self, record: logging.LogRecord) -> None:
        return None


def guard_logging(package: str = "keyrot") -> None:
    """Keep key material out of logs whatever the level: third-party loggers at WARNING at most, and every record
    of `package` and its module loggers scrubbed before any handler above them (Lambda's root handler) writes it.

    Idempotent: calling it again adds nothing.
    """
    for name in THIRD_PARTY_LOGGERS:
        third_party = logging.getLogger(name)
        if third_party.level < logging.WARNING:  # NOTSET too: never inherit a DEBUG root
            third_party.setLevel(logging.WARNING)
    own = logging.getLogger(package)
    if not any(isinstance(handler, _ScrubOnly) for handler in own.handlers):
        guard = _ScrubOnly(level=logging.NOTSET)
        guard.addFilter(ScrubKeyMaterial())
        own.addHandler(guard)
