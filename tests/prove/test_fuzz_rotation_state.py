"""Bad input against a real rotation (moto and the stand-in): garbled OpenAI answers, garbage pending values, odd
tags and stray events. Each ends in a working rotation or keyrot's typed error, and changes nothing it should not:
AWSCURRENT keeps a working key, nothing is minted for a refused request, nothing is promoted that does not work.

The api_key in every generated secret is a real stand-in key, so the suite's hygiene check fails the test if any
log, output or failure text shows it.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends

from keyrot.constants import TAG_KEY_NAME
from keyrot.errors import KeyrotError, KeyValidationError
from keyrot.handlers import rotate
from keyrot.observability import PowertoolsRotationTelemetry
from keyrot.openai_admin import KeyStatus, OpenAIKeyProbe, OpenAITransport
from keyrot.rotation.events import STEP_NAMES
from keyrot.secret_model import KEY_NAME_PATTERN
from lab.moto_gaps import enable_rotation, moto_secret
from lab.openai_standin import OpenAIStandIn
from lab.scenario import ROTATION_LAMBDA_ARN, RotationWorld
from tests.prove.strategies import MARKER, created_service_accounts, key_payloads, tag_lists, text_of

REGION = "us-east-1"
STATEFUL = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
_names = itertools.count(1)


def _key_name() -> str:
    return f"fuzz-{next(_names)}"


def _rotated(world: RotationWorld, key_name: str) -> str:
    arn = world.create_managed_secret(key_name)
    assert world.driver().rotate(arn).succeeded
    return arn


def _status(world: RotationWorld, api_key: str) -> KeyStatus:
    return OpenAIKeyProbe(OpenAITransport(world.openai.base_url)).check(api_key).status


def _snapshot(world: RotationWorld) -> dict[str, Any]:
    """Every secret's versions, labels and values (read from moto directly), every live account and key."""
    backend = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION]
    secrets = {
        secret.arn: {vid: (tuple(v["version_stages"]), v.get("secret_string")) for vid, v in secret.versions.items()}
        for secret in list(backend.secrets.values())
    }
    state = world.openai.state
    with state.lock:
        keys = sorted(key.id for key in state.keys.values() if state.key_is_live(key.id))
    return {"secrets": secrets, "accounts": sorted(a.id for a in state.live_service_accounts()), "keys": keys}


def _issued_key(world: RotationWorld) -> str:
    """A real stand-in key (owned by nothing keyrot manages), to stand in for the key inside generated secrets."""
    state = world.openai.state
    _, key = state.create_service_account(world.project_id, "not-keyrot", with_key=True, expires_in=None)
    assert key is not None
    return key.value


def _telemetry_invoker(world: RotationWorld) -> Callable[[dict[str, Any]], Any]:
    rotate.metrics.default_dimensions.clear()
    rotate.metrics.clear_metrics()
    return world.invoker(PowertoolsRotationTelemetry(rotate.metrics, rotate.logger, world.environment))


# --- garbled answers to "create service account" ------------------------------------------------------------------


class GarblingSession(requests.Session):
    """Answers to POST .../service_accounts (after the stand-in acted on them) get the next generated body."""

    def __init__(self, bodies: Iterator[Any]) -> None:
        super().__init__()
        self._bodies = bodies

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        if str(method) == "POST" and str(url).endswith("/service_accounts") and response.status_code == 200:
            body = next(self._bodies)
            response._content = body if isinstance(body, bytes) else json.dumps(body, allow_nan=True).encode()
        return response


@STATEFUL
@given(
    bodies=st.lists(
        st.one_of(created_service_accounts(), st.just(b"<html>502</html>"), st.just(b'{"id": "svc_')), min_size=1
    )
)
def test_a_garbled_create_answer_never_promotes_a_key_that_does_not_work(
    world: RotationWorld, bodies: list[Any]
) -> None:
    # GIVEN a secret with a working key, and OpenAI answering the creation of its next key with garbage
    arn = _rotated(world, _key_name())
    before = world.current(arn)
    real_key = _issued_key(world)
    answers = [
        json.loads(json.dumps(body).replace(MARKER, real_key)) if not isinstance(body, bytes) else body
        for body in bodies
    ]
    garbling = dataclasses.replace(world, session_factory=lambda: GarblingSession(itertools.cycle(answers)))
    driver = garbling.driver(_telemetry_invoker(garbling))
    token = driver.start(arn)
    # WHEN Secrets Manager runs the rotation
    run = driver.rotate(arn, token=token, max_attempts=1)
    # THEN it worked, or failed with a typed error leaving the working key current
    event("rotated" if run.succeeded else f"{run.failures[0][0]}: {type(run.failures[0][1]).__name__}")
    if run.succeeded:
        current = world.current(arn)
        assert _status(world, current.api_key) is KeyStatus.VALID
        assert current.service_account_id in {a.id for a in world.keyrot_accounts()}
        return
    ((step, error),) = run.failures
    assert isinstance(error, KeyrotError), f"{step}: untyped {type(error).__name__}"
    assert world.current(arn) == before and _status(world, before.api_key) is KeyStatus.VALID
    # AND once OpenAI answers properly, the same rotation resumes, or (if a lying answer was stored) keeps refusing
    pending = world.pending(arn)
    retry = world.driver().rotate(arn, token=token, max_attempts=1)
    if pending is None:
        assert retry.succeeded, retry.failures
        owners = {a.id for a in world.keyrot_accounts() if a.name.endswith(token)}
        assert owners == {world.current(arn).service_account_id}, "orphan twin left after the retry"
    else:
        assert not retry.succeeded and isinstance(retry.failures[0][1], KeyValidationError), retry.failures
        assert world.current(arn) == before


# --- garbage written as the pending value -------------------------------------------------------------------------


@STATEFUL
@given(data=st.data())
def test_a_garbage_pending_value_mints_nothing_and_promotes_nothing(world: RotationWorld, data: st.DataObject) -> None:
    # GIVEN a rotation whose pending version someone filled by hand (carrying a real key)
    key_name = _key_name()
    arn = _rotated(world, key_name)
    real_key = _issued_key(world)
    text = data.draw(
        text_of(key_payloads(environment=world.environment, key_name=key_name, project_id=world.project_id))
    )
    text = text.replace(MARKER, real_key)
    if not text or len(text.encode("utf-8", "surrogatepass")) > 65_536 or not _encodable(text):
        text = json.dumps({"api_key": real_key})
    driver = world.driver(_telemetry_invoker(world))
    token = driver.start(arn)
    world.secrets.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=text, VersionStages=["AWSPENDING"]
    )
    before = _snapshot(world)
    current = world.current(arn)
    # WHEN Secrets Manager runs the rotation
    run = driver.rotate(arn, token=token, max_attempts=1)
    # THEN a step refuses it with a typed error, and nothing at all changed
    assert not run.succeeded, "a hand-written pending value was promoted"
    event(f"{run.failures[0][0]}: {type(run.failures[0][1]).__name__}")
    ((step, error),) = run.failures
    assert isinstance(error, KeyrotError), f"{step}: untyped {type(error).__name__}: {error}"
    assert _snapshot(world) == before
    assert world.current(arn) == current and _status(world, current.api_key) is KeyStatus.VALID


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- odd tags -----------------------------------------------------------------------------------------------------


def _aws_tags(world: RotationWorld, tags: list[dict[str, str]]) -> list[dict[str, str]]:
    """The generated tags, within what Secrets Manager stores (keys 1-128, values up to 256 characters), with the
    world's project where the generator kept the default."""
    kept = []
    for tag in tags:
        key, value = tag["Key"], tag.get("Value")
        if (
            not key
            or len(key) > 128
            or not _encodable(key)
            or (value is not None and (len(value) > 256 or not _encodable(value)))
        ):
            continue
        if value == "proj_abc":
            value = world.project_id
        if value == "chat-backend":
            value = _key_name()
        kept.append({"Key": key, "Value": value} if value is not None else {"Key": key, "Value": ""})
    return kept


@STATEFUL
@given(tags=tag_lists())
def test_odd_tags_rotate_correctly_or_mint_nothing(world: RotationWorld, tags: list[dict[str, str]]) -> None:
    # GIVEN a new secret with generated tags
    aws_tags = _aws_tags(world, tags)
    arn = world.secrets.create_secret(Name=f"keyrot/dev/{uuid.uuid4()}", Tags=aws_tags)["ARN"]
    enable_rotation(REGION, arn, ROTATION_LAMBDA_ARN)
    # AND declared to the function under the key name its tag gives (so tags that agree rotate, the rest is refused)
    tagged = next((tag["Value"] for tag in aws_tags if tag["Key"] == TAG_KEY_NAME), "")
    world.declare(tagged if KEY_NAME_PATTERN.fullmatch(tagged) else _key_name(), arn)
    before = _snapshot(world)
    # WHEN Secrets Manager rotates it
    run = world.driver(_telemetry_invoker(world)).rotate(arn, max_attempts=1)
    # THEN it has a working key named after its tags, or a typed error and nothing minted or stored
    event("rotated" if run.succeeded else f"{run.failures[0][0]}: {type(run.failures[0][1]).__name__}")
    if run.succeeded:
        current = world.current(arn)
        assert _status(world, current.api_key) is KeyStatus.VALID
        assert (current.environment, current.project_id) == (world.environment, world.project_id)
        return
    ((step, error),) = run.failures
    assert isinstance(error, KeyrotError), f"{step}: untyped {type(error).__name__}: {error}"
    after = _snapshot(world)
    assert after["accounts"] == before["accounts"] and after["keys"] == before["keys"]
    assert not any(value for _, value in after["secrets"][arn].values()), "a value was stored for a refused secret"


# --- stray events -------------------------------------------------------------------------------------------------


@STATEFUL
@given(
    step=st.sampled_from(STEP_NAMES),
    which=st.sampled_from(["current", "previous", "unknown", "revoked"]),
    target=st.sampled_from(["arn", "name", "other", "missing"]),
    rotation_token=st.one_of(st.none(), st.just(""), st.uuids().map(str)),
)
def test_a_stray_event_changes_nothing(
    world: RotationWorld, step: str, which: str, target: str, rotation_token: str | None
) -> None:
    # GIVEN a secret with a current and a previous version (and another secret), and no rotation in progress
    key_name = _key_name()
    arn = _rotated(world, key_name)
    assert world.driver().rotate(arn).succeeded
    other = _rotated(world, _key_name())
    stages = {labels[0]: version for version, labels in world.stages(arn).items() if labels}
    token = {"current": stages["AWSCURRENT"], "previous": stages["AWSPREVIOUS"]}.get(which, str(uuid.uuid4()))
    secret_id = {"arn": arn, "name": f"keyrot/{world.environment}/{key_name}", "other": other}.get(
        target, arn.replace(key_name, "nothing-here")
    )
    event: dict[str, Any] = {"Step": step, "SecretId": secret_id, "ClientRequestToken": token}
    if rotation_token is not None:
        event["RotationToken"] = rotation_token
    before = _snapshot(world)
    # WHEN Secrets Manager (or anyone) sends it
    try:
        _telemetry_invoker(world)(event)
    except KeyrotError:
        pass
    # THEN nothing changed (an event for the current version is a finished rotation: a no-op)
    assert _snapshot(world) == before


@pytest.fixture
def world(openai_standin: OpenAIStandIn, secrets_client: Any) -> RotationWorld:
    """Every example of a test shares this world; each uses its own secrets."""
    return RotationWorld.create(openai_standin, secrets_client)


def test_moto_holds_the_secrets_this_file_snapshots(world: RotationWorld) -> None:
    arn = _rotated(world, _key_name())
    assert moto_secret(REGION, arn).versions and arn in _snapshot(world)["secrets"]
