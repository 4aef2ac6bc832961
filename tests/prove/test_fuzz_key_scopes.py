"""Hostile scope declarations: `keyrot:keys[i].scopes` at preview, and KEYROT_KEY_SCOPES in the rotation function.

Each key's `scopes` (and the whole variable the rotation function reads) is replaced by anything: documented scopes,
near-misses of them (other case, a dot more or less, a space), scopes OpenAI never documented, key-shaped text, JSON
of every shape. Every case ends in the declared scopes, exactly, or in the reader's own error naming the setting
(`keyrot:keys[i].scopes...` at preview, KEYROT_KEY_SCOPES in the function); a name keyrot does not document is never
accepted; no message carries a planted key.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyrot.errors import ConfigurationError
from keyrot.pulumi.config import ConfigError, parse_config
from keyrot.pulumi.lambda_settings import rotation_environment
from keyrot.scopes import DOCUMENTED_SCOPES
from keyrot.settings import RotationSettings
from lab.pulumi_program import stack_config
from tests.prove.strategies import MARKER, json_values, unicode_text

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ADMIN_ARN = "arn:aws:secretsmanager:us-east-1:111111111111:secret:keyrot/dev/openai-admin-key-AbCdEf"
# Built at import, never written out whole: the repository holds no literal shaped like a real key.
PLANTED = "-".join(("sk", "proj", "PLANTED" + "q3Wx8Lm2Vz5Kc9Rt1Yn4Hb7Jd6Fs0Ge"))
KNOWN = sorted(DOCUMENTED_SCOPES)


def _near_misses(scope: str) -> list[str]:
    return [scope.upper(), scope + ".", scope.replace(".", "_"), scope.replace(".", ". "), scope + "s", f" {scope}"]


scope_names = st.one_of(
    st.sampled_from(KNOWN),
    st.sampled_from(KNOWN).flatmap(lambda s: st.sampled_from(_near_misses(s))),
    st.from_regex(r"\A[a-z]{1,10}(\.[a-z_]{1,10}){1,3}\Z"),
    st.sampled_from([PLANTED, MARKER, "", "*", "api.*", "all"]),
    unicode_text,
)
scope_values = st.one_of(
    st.lists(scope_names, max_size=6),
    st.lists(st.one_of(scope_names, json_values), max_size=4),
    json_values,
    scope_names,
)


def _raw(stack: str = "dev") -> dict[str, Any]:
    return {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("keyrot:")}


def _valid(value: Any) -> bool:
    """What the reader must accept: a non-empty list of documented scopes, each once."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(s, str) and s in DOCUMENTED_SCOPES for s in value)
        and len(set(value)) == len(value)
    )


def _clean(text: str) -> None:
    assert PLANTED[8:] not in text and MARKER not in text, "a planted value was echoed"


@FUZZ
@given(declared=st.dictionaries(st.sampled_from([0, 1]), scope_values, min_size=1))
def test_any_scopes_declaration_yields_those_scopes_or_a_problem_naming_the_key_s_scopes(
    declared: dict[int, Any],
) -> None:
    # GIVEN dev's configuration with `scopes` set to anything on some of its keys
    raw = _raw()
    keys = json.loads(raw["keys"])
    for index, value in declared.items():
        keys[index]["scopes"] = value
    raw["keys"] = json.dumps(keys)
    # WHEN it is validated, as at preview
    try:
        config = parse_config(raw, stack="dev")
    except ConfigError as exc:
        # THEN a refusal names only the scopes of the keys that were changed, and only those with bad values
        bad = {i for i, value in declared.items() if value is not None and not _valid(value)}
        assert bad, exc.problems
        named = {int(p.split("[", 1)[1].split("]", 1)[0]) for p in exc.problems}
        assert all(p.startswith("keyrot:keys[") and "].scopes" in p.split(":")[1] for p in exc.problems)
        assert named == bad, exc.problems
        for problem in exc.problems:
            _clean(problem)
        return
    # THEN an accepted configuration holds exactly the declared scopes, every one documented
    for index, key in enumerate(config.keys):
        value = declared.get(index)
        assert _valid(value) and key.scopes == tuple(value) if value is not None else key.scopes is None
    # AND the rotation function is told exactly those, and reads them back
    variables = rotation_environment(config, admin_secret_arn=ADMIN_ARN, managed_secret_arns=None)
    settings_ = RotationSettings.from_env({k: str(v) for k, v in variables.items()})
    assert {key.name: settings_.scopes_for(key.name) for key in config.keys} == {k.name: k.scopes for k in config.keys}


@FUZZ
@given(raw=st.one_of(st.dictionaries(st.sampled_from(["chat-backend", "Chat", ""]), scope_values), json_values))
def test_any_key_scopes_variable_yields_documented_scopes_or_an_error_naming_it(raw: Any) -> None:
    # GIVEN the rotation function's KEYROT_KEY_SCOPES set to any JSON
    environ = {
        "KEYROT_ENVIRONMENT": "dev",
        "KEYROT_ADMIN_SECRET_ARN": ADMIN_ARN,
        "KEYROT_KEY_SCOPES": json.dumps(raw),
    }
    # WHEN the function reads its settings
    try:
        settings_ = RotationSettings.from_env(environ)
    except ConfigurationError as exc:
        # THEN a refusal names the variable and echoes no planted value
        assert "KEYROT_KEY_SCOPES" in str(exc)
        _clean(str(exc))
        return
    # THEN whatever it accepted is documented scopes only, non-empty, each once
    for scopes in (settings_.key_scopes or {}).values():
        assert _valid(list(scopes))


@pytest.mark.parametrize("scope", [s for known in KNOWN for s in _near_misses(known)])
def test_a_near_miss_of_a_documented_scope_is_refused_at_preview(scope: str) -> None:
    raw = _raw()
    keys = json.loads(raw["keys"])
    keys[1]["scopes"] = [scope]
    raw["keys"] = json.dumps(keys)
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, stack="dev")
    assert [p for p in caught.value.problems if p.startswith("keyrot:keys[1].scopes[0]:")], caught.value.problems
