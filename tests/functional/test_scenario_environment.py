"""The rotation world's function environment is the one the infrastructure deploys: a test that runs the real handler
from `RotationWorld.environment_variables()` gets the settings the world declares, key scopes included."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyrot.constants import ENV_KEY_SCOPES
from keyrot.handlers import rotate
from keyrot.scopes import DOCUMENTED_SCOPES
from keyrot.settings import RotationSettings
from lab.rotation_driver import RotationDriver
from lab.scenario import RotationWorld

KEY_NAMES = ("chat-backend", "batch-embeddings", "notebooks")
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/dev/{name}-AbCdEf"

_scopes = st.lists(st.sampled_from(sorted(DOCUMENTED_SCOPES)), min_size=1, max_size=4, unique=True).map(tuple)
_declared = st.dictionaries(st.sampled_from(KEY_NAMES), _scopes, max_size=len(KEY_NAMES))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(declared=_declared)
def test_the_functions_environment_carries_exactly_the_scopes_the_world_declares(
    world: RotationWorld, declared: dict[str, tuple[str, ...]]
) -> None:
    # GIVEN a world deploying three keys, any of them declared with any documented scopes (or none declared at all)
    managed = {name: ARN.format(name=name) for name in KEY_NAMES}
    deployed = world.with_settings(managed_secrets=managed, key_scopes=declared or None)
    # WHEN the rotation function reads its settings from the environment the world deploys it with
    variables = deployed.environment_variables()
    read = RotationSettings.from_env(variables)
    # THEN it mints each key with exactly the declared scopes, and a world declaring none sets no variable (as a
    # stack whose keys declare none deploys without it)
    assert {name: read.scopes_for(name) for name in KEY_NAMES} == {name: declared.get(name) for name in KEY_NAMES}
    assert (ENV_KEY_SCOPES in variables) == bool(declared)


def test_the_deployed_handler_mints_a_declared_keys_key_with_its_scopes(
    world: RotationWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a key declared with chat-only scopes, and the rotation function deployed from the world's environment
    arn = world.create_managed_secret("chat-backend")
    scoped = world.with_settings(key_scopes={"chat-backend": ("model.request",)})
    for name, value in scoped.environment_variables().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEYROT_VALIDATION_DELAY_SECONDS", "0.01")
    # WHEN the real handler rotates it
    run = RotationDriver(world.secrets, lambda event: rotate.handler(event, None)).rotate(arn)
    # THEN OpenAI holds the new key with exactly that scope (an unrestricted key would be a silent privilege grant)
    assert run.succeeded, run.failures
    current = world.current(arn)
    assert world.openai.state.keys[current.key_id].scopes == frozenset({"model.request"})
    assert json.loads(scoped.environment_variables()[ENV_KEY_SCOPES]) == {"chat-backend": ["model.request"]}
