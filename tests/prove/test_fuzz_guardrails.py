"""Hostile guardrails blocks: a correct, typed result or GuardrailsConfigError naming a setting; nothing else.

The validator (`keyrot.guardrails.parse_guardrails`, what `pulumi preview` and the functions run) is fed near-misses
of a real block, as a program passes it (a mapping) and as the stack configuration holds it (JSON text): fields
dropped, retyped, made huge, negative, fractional or unicode; model ids and e-mail addresses garbled; alerts above the
hard limit or repeated; unknown fields added; key-shaped values planted as values and as names.

Every case ends either in a DeclaredGuardrails that keeps the validator's promises (re-derived here from the result
and the input, not taken from the validator) and whose document reads back as itself, or in GuardrailsConfigError
whose every problem names a `keyrot:guardrails` setting. The input is left as it was; nothing is printed or logged;
no message carries a planted key.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from keyrot.guardrails import (
    DeclaredGuardrails,
    GuardrailsConfigError,
    document_digest,
    document_json,
    load_document,
    parse_guardrails,
)
from keyrot.guardrails import constants as c
from tests.prove.strategies import MARKER, huge_ints, huge_text, json_values, unicode_text

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Key-shaped values planted in inputs, built at import (the repository holds no literal shaped like a real key).
_PLANTED = (
    MARKER,
    "-".join(("sk", "proj", "PLANTED" + "k3Jd8Qz1Wm5Xr7Tb2Nc9Vf4Hg6Ys0Lp")),
    "-".join(("sk", "admin", "PLANTED" + "u2Ri9Eo4Pw7Qa1Zs6Xd3Cf8Vb5Gn0Hm")),
)
_FRAGMENTS = tuple({secret[i : i + 10] for secret in _PLANTED for i in range(8, len(secret) - 9)})
VALID: dict[str, Any] = {
    "rateLimits": {
        "gpt-4o-mini": {"max_requests_per_1_minute": 500, "max_tokens_per_1_minute": 200_000},
        "gpt-4.1": {"batch_1_day_max_input_tokens": 1_000_000},
    },
    "spendLimitUsd": 100,
    "spendAlerts": [
        {"thresholdUsd": 50, "recipients": ["finance@example.com"]},
        {"thresholdUsd": 80.25, "recipients": ["oncall@example.com", "finance@example.com"]},
    ],
    "models": {"allow": ["gpt-4o-mini", "gpt-4.1"]},
    "enforce": "restore",
}
_PATHS: list[tuple[Any, ...]] = [
    ("rateLimits",),
    ("rateLimits", "gpt-4o-mini"),
    ("rateLimits", "gpt-4o-mini", "max_requests_per_1_minute"),
    ("rateLimits", "gpt-4.1", "batch_1_day_max_input_tokens"),
    ("spendLimitUsd",),
    ("spendAlerts",),
    ("spendAlerts", 0),
    ("spendAlerts", 0, "thresholdUsd"),
    ("spendAlerts", 1, "recipients"),
    ("spendAlerts", 1, "recipients", 0),
    ("models",),
    ("models", "allow"),
    ("models", "allow", 1),
    ("enforce",),
]
near_values = st.one_of(
    json_values,
    huge_ints,
    huge_text,
    unicode_text,
    st.integers(-(10**13), 10**13),
    st.floats(),
    st.sampled_from(["500", "-5", "1.5", "1e3", "0.001", "100.00", " 7 ", "gpt 4o", "a@b", "x@example.com"]),
    st.sampled_from(["notify", "restore", "NOTIFY", "deny", "allow", [], {}, None, True]),
    st.sampled_from(_PLANTED),
)
names = st.one_of(unicode_text, st.sampled_from([*_PLANTED, "spendLimitUSD", "rate_limits", "max_tokens_per_minute"]))


@st.composite
def blocks(draw: st.DrawFn) -> Any:
    """VALID with values replaced, fields dropped and unknown fields added along its paths."""
    block = copy.deepcopy(VALID)
    for path in draw(st.lists(st.sampled_from(_PATHS), max_size=4)):
        parent: Any = block
        for step in path[:-1]:
            try:
                parent = parent[step]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        if not isinstance(parent, dict | list):
            continue
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        last = path[-1]
        try:
            if action == "replace":
                parent[last] = draw(near_values)
            elif action == "drop":
                del parent[last]
            elif isinstance(parent, dict):
                parent[draw(names)] = draw(near_values)
        except (KeyError, IndexError, TypeError):
            continue
    if draw(st.booleans()):
        block[draw(names)] = draw(near_values)
    return json.dumps(block) if draw(st.integers(0, 4)) == 0 else block


@contextmanager
def watched() -> Iterator[list[str]]:
    """Everything printed or logged meanwhile (the validator prints and logs nothing)."""
    lines: list[str] = []

    class Records(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler, root = Records(logging.DEBUG), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        lines.extend(text for text in (out.getvalue(), err.getvalue()) if text)


def assert_keeps_its_promises(declared: DeclaredGuardrails, raw: Any) -> None:
    """Re-derived from the result: what a valid block means."""
    source = json.loads(raw) if isinstance(raw, str) else raw
    for model, limits in declared.rate_limits.items():
        assert c.MODEL_ID_PATTERN.fullmatch(model) and limits
        for name, value in limits.items():
            assert name in c.RATE_LIMIT_NAMES
            assert type(value) is int and 0 <= value <= c.MAX_RATE_LIMIT
            assert value == int(str(source["rateLimits"][model][name]).strip())
    limit = declared.spend_limit_cents
    assert limit is None or (type(limit) is int and 0 < limit <= c.MAX_USD_CENTS)
    thresholds = [alert.threshold_cents for alert in declared.spend_alerts]
    assert thresholds == sorted(set(thresholds))
    for alert in declared.spend_alerts:
        assert 0 < alert.threshold_cents and (limit is None or alert.threshold_cents <= limit)
        assert alert.recipients and all(c.EMAIL_PATTERN.fullmatch(a) for a in alert.recipients)
        assert list(alert.recipients) == sorted(alert.recipients)
    if declared.models is not None:
        assert declared.models.mode in ("allow_list", "deny_list") and declared.models.model_ids
        assert all(c.MODEL_ID_PATTERN.fullmatch(m) for m in declared.models.model_ids)
    assert declared.enforce in c.ENFORCE_MODES
    # AND the deployment's document reads back as the same guardrails
    text = document_json(declared)
    assert load_document(text, expected_digest=document_digest(text)) == declared


@FUZZ
@given(raw=blocks())
def test_any_block_is_read_correctly_or_refused_naming_its_settings(raw: Any) -> None:
    before = copy.deepcopy(raw)
    with watched() as output:
        try:
            declared = parse_guardrails(raw)
        except GuardrailsConfigError as exc:
            declared = None
            error = exc
    assert raw == before, "the validator changed its input"
    assert output == [], f"the validator printed or logged: {output[:2]}"
    if declared is not None:
        event("accepted")
        assert_keeps_its_promises(declared, raw)
        return
    event("refused")
    assert error.problems
    for problem in error.problems:
        assert str(problem).startswith("keyrot:guardrails"), str(problem)
        assert problem.config_key.startswith("guardrails")
    texts = (str(error), repr(error), "".join(traceback.format_exception(error)))
    leaked = [fragment for fragment in _FRAGMENTS for text in texts if fragment in text]
    assert not leaked, f"a planted key reached the error: ...{leaked[0]}..."


@FUZZ
@given(raw=json_values)
def test_anything_at_all_is_a_block_or_one_clear_refusal(raw: Any) -> None:
    try:
        parse_guardrails(raw)
    except GuardrailsConfigError as exc:
        assert all(str(problem).startswith("keyrot:guardrails") for problem in exc.problems)
