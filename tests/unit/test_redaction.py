"""Redaction keeps key material out of text while leaving ids readable."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from keyrot.observability import ScrubKeyMaterial
from keyrot.redaction import redact_key, scrub

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
