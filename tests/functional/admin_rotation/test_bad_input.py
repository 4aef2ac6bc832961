"""Bad input to the admin rotation gets a clear error naming what is wrong, changes nothing, and never echoes a key."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyrot.admin_rotation import AdminKeyValidationError, AdminKeyValue
from keyrot.errors import AdminKeyError, RotationStateError
from keyrot.secret_model import AdminCredentials
from lab.moto_gaps import disable_rotation
from lab.openai_standin.audit import Actor
from lab.openai_standin.state import OWNER_EMAIL, OWNER_USER_ID

from .world import AdminWorld


def _planted(world: AdminWorld, text: str) -> str:
    """A rotation started whose pending version someone filled with `text`; returns its token."""
    driver = world.driver()
    token = driver.start(world.arn)
    world.secrets.put_secret_value(
        SecretId=world.arn, ClientRequestToken=token, SecretString=text, VersionStages=["AWSPENDING"]
    )
    return token


def test_a_malformed_pending_value_is_refused_naming_the_version(admin_world: AdminWorld) -> None:
    # GIVEN a pending value that is not the admin-key contract (it even holds the current key, unquoted)
    world = admin_world
    token = _planted(world, f"admin_key={world.bootstrap_key}")
    # WHEN testSecret runs THEN it refuses, naming the version, and AWSCURRENT is unchanged
    with pytest.raises(RotationStateError, match=token) as raised:
        world.driver().step(world.arn, token, "testSecret")
    assert world.bootstrap_key not in str(raised.value)
    assert world.current().admin_key == world.bootstrap_key


def test_a_key_named_with_key_material_is_refused_without_echoing_the_name(admin_world: AdminWorld) -> None:
    # GIVEN a planted admin key whose name is another key's value
    world = admin_world
    owner = Actor.session(OWNER_USER_ID, OWNER_EMAIL)
    planted = world.openai.state.create_admin_key(world.bootstrap_key, expires_in=None, actor=owner)
    token = _planted(world, AdminCredentials(planted.value, planted.id).to_json())
    # WHEN testSecret checks whom the key was minted for
    with pytest.raises(AdminKeyValidationError, match="keyrot did not mint it") as raised:
        world.driver().step(world.arn, token, "testSecret")
    # THEN the message says so without the name's key material
    assert world.bootstrap_key not in str(raised.value)


def test_a_secret_whose_rotation_is_disabled_is_refused(admin_world: AdminWorld) -> None:
    # GIVEN rotation turned off on the admin-key secret after a rotation was started
    world = admin_world
    driver = world.driver()
    token = driver.start(world.arn)
    disable_rotation("us-east-1", world.arn)
    # WHEN a step arrives THEN it is refused and nothing is minted
    with pytest.raises(RotationStateError, match="rotation is not enabled"):
        driver.step(world.arn, token, "createSecret")
    assert world.openai.calls_to("create_admin_api_key") == []


def test_a_token_that_is_not_pending_is_refused(admin_world: AdminWorld) -> None:
    world = admin_world
    with pytest.raises(RotationStateError, match="has no version"):
        world.driver().step(world.arn, "0" * 36, "createSecret")


@given(st.one_of(st.text(max_size=200), st.dictionaries(st.text(max_size=12), st.text(max_size=40)).map(json.dumps)))
def test_parsing_any_admin_key_value_raises_only_admin_key_error_and_never_quotes_it(text: str) -> None:
    # GIVEN any text in the admin-key secret, with a key-shaped marker inside
    planted = text.replace("a", "sk-admin-PLANTED", 1)
    # WHEN it is parsed THEN it is a value, or an AdminKeyError that does not quote it
    try:
        AdminKeyValue.from_json(planted)
    except AdminKeyError as exc:
        assert "PLANTED" not in str(exc)


@pytest.mark.parametrize("field", ["created_at", "expires_at"])
@pytest.mark.parametrize("value", [17, "yesterday", "2026-01-01T00:00:00", "9999-12-31T23:59:59-23:59"])
def test_a_bad_time_field_names_the_field(field: str, value: object) -> None:
    text = json.dumps({"admin_key": "sk-admin-x", "key_id": "key_abc", field: value})
    with pytest.raises(AdminKeyError, match=field):
        AdminKeyValue.from_json(text)
