"""Redaction keeps key material out of text while leaving ids readable."""

from __future__ import annotations

import logging
import sys

from hypothesis import given
from hypothesis import strategies as st

from keyrot.observability import ScrubKeyMaterial
from keyrot.redaction import THIRD_PARTY_LOGGERS, guard_logging, redact_key, scrub

_KEY_ALPHABET = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def test_redact_key_keeps_only_a_short_prefix() -> None:
    value = "sk-svcacct-" + "Q" * 48
    assert redact_key(value) == "sk-svcac…(redacted)"
    assert redact_key("short") == "…(redacted)"


def test_scrub_removes_known_secrets_and_key_shapes_but_keeps_ids() -> None:
    opaque = "not-key-shaped-but-secret-1234567890"
    text = f"key key_abc (svc_acct_def) in proj_1 failed: Incorrect API key provided: sk-ab********wxyz; {opaque}"
    cleaned = scrub(text, [opaque])
    assert "sk-ab********wxyz" not in cleaned
    assert opaque not in cleaned
    assert "key_abc" in cleaned and "svc_acct_def" in cleaned and "proj_1" in cleaned


@given(body=st.text(_KEY_ALPHABET, min_size=20, max_size=80), prefix=st.sampled_from(["sk-", "sk-proj-", "sk-admin-"]))
def test_scrub_never_lets_a_key_through(body: str, prefix: str) -> None:
    key = prefix + body
    cleaned = scrub(f"before {key} after")
    assert key not in cleaned
    assert body[-12:] not in cleaned


def test_log_filter_rewrites_key_material_in_formatted_messages() -> None:
    record = logging.LogRecord("keyrot", logging.INFO, __file__, 1, "minted %s", ("sk-svcacct-" + "z" * 40,), None)
    assert ScrubKeyMaterial().filter(record)
    assert "zzzzzzzz" not in record.getMessage()


def test_log_filter_scrubs_extra_fields_and_tracebacks() -> None:
    # GIVEN a record carrying a key in an extra field and in the exception it reports
    key = "sk-admin-" + "k" * 40
    try:
        raise ValueError(f"rejected {key}")
    except ValueError:
        record = logging.LogRecord("keyrot.x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    record.error = f"detail {key}"
    # WHEN the filter runs
    assert ScrubKeyMaterial().filter(record)
    # THEN neither the extra field nor the formatted traceback holds the key
    formatted = logging.Formatter("%(message)s %(error)s").format(record)
    assert "failed detail sk-admin" in formatted
    assert key not in formatted


@given(level=st.sampled_from([logging.DEBUG, logging.INFO, logging.NOTSET]))
def test_guard_logging_keeps_third_party_loggers_at_warning_whatever_the_root_level(level: int) -> None:
    # GIVEN a root logger at DEBUG or INFO and a library logger set lower (or not at all)
    root = logging.getLogger()
    saved = (root.level, {name: logging.getLogger(name).level for name in THIRD_PARTY_LOGGERS})
    try:
        root.setLevel(logging.DEBUG)
        for name in THIRD_PARTY_LOGGERS:
            logging.getLogger(name).setLevel(level)
        # WHEN the guard is installed
        guard_logging("keyrot")
        # THEN no library logger creates DEBUG or INFO records (botocore's carry request and response bodies)
        assert all(not logging.getLogger(name).isEnabledFor(logging.INFO) for name in THIRD_PARTY_LOGGERS)
    finally:
        root.setLevel(saved[0])
        for name, old in saved[1].items():
            logging.getLogger(name).setLevel(old)
