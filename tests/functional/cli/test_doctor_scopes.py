"""`keyrot doctor`'s scopes line: a key's scopes from its secret value, its probe's refusal judged by them, and an
honest "not observable" for missing-scope refusals in recent usage (OpenAI exposes none)."""

from __future__ import annotations

import json
from typing import Any

from lab.scenario import RotationWorld

from .conftest import Cli

DOCTOR = ("doctor", "--env", "dev", "--key", "chat-backend", "--json")


def _rotated_with(world: RotationWorld, scopes: tuple[str, ...] | None) -> str:
    arn = world.create_managed_secret("chat-backend")
    scoped = world.with_settings(key_scopes={"chat-backend": scopes} if scopes else None)
    assert scoped.driver().rotate(arn).succeeded
    return arn


def _findings(cli: Cli) -> tuple[int, dict[str, dict[str, Any]]]:
    result = cli(*DOCTOR)
    return result.exit_code, {f["check"]: f for f in json.loads(result.stdout)["findings"]}


def test_doctor_shows_a_chat_only_key_s_scopes_and_explains_its_models_refusal(world: RotationWorld, cli: Cli) -> None:
    # GIVEN the current key was minted for chat only
    arn = _rotated_with(world, ("model.request",))
    # WHEN doctor runs
    code, findings = _findings(cli)
    # THEN the probe's refusal is RESTRICTED, and the scopes line says which scopes and that the refusal is expected
    scopes = findings["key scopes"]
    assert findings["key valid at OpenAI"]["detail"].startswith("RESTRICTED")
    assert scopes["status"] == "ok" and code == 0
    assert f"{world.current(arn).key_id} minted with model.request" in scopes["detail"]
    assert "expected: GET /v1/models needs api.model.read" in scopes["detail"]
    # AND it says that refusals in recent usage cannot be observed, rather than reporting none
    assert "missing-scope refusals in recent usage: not observable" in scopes["detail"]
    assert "application's logs" in scopes["hint"]


def test_doctor_fails_a_key_refused_a_request_its_scopes_allow(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a key minted with api.model.read that OpenAI now refuses GET /v1/models for that very scope
    arn = _rotated_with(world, ("api.model.read",))
    world.openai.state.keys[world.current(arn).key_id].scopes = frozenset({"model.request"})
    # WHEN doctor runs THEN the scopes line fails, naming the missing scope, and says to rotate
    code, findings = _findings(cli)
    scopes = findings["key scopes"]
    assert (scopes["status"], code) == ("fail", 1)
    assert "lacks a scope it was minted with" in scopes["detail"] and "missing: api.model.read" in scopes["detail"]
    assert "keyrot rotate --env dev --key chat-backend" in scopes["hint"]


def test_doctor_shows_an_unrestricted_key_as_such(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a key minted without scopes (every deployment before scopes)
    _rotated_with(world, None)
    # WHEN doctor runs THEN the scopes line says unrestricted, and still that refusals are not observable
    code, findings = _findings(cli)
    scopes = findings["key scopes"]
    assert (scopes["status"], code) == ("ok", 0)
    assert "is unrestricted (minted without scopes)" in scopes["detail"] and "not observable" in scopes["detail"]


def test_doctor_does_not_blame_scopes_for_an_unrelated_refusal(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a chat-only key refused for its IP, not for a scope
    arn = _rotated_with(world, ("model.request",))
    world.openai.state.keys[world.current(arn).key_id].restriction = "IP 203.0.113.9 is not authorized."
    # WHEN doctor runs THEN the scopes line warns that the refusal is not one its scopes explain
    _, findings = _findings(cli)
    scopes = findings["key scopes"]
    assert scopes["status"] == "warn"
    assert "not the missing-scope refusal these scopes explain" in scopes["detail"]
