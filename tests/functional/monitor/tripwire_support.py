"""Helpers of the tripwire tests: keyrot's admin key recorded with its id, another admin key, the inbox by subject."""

from __future__ import annotations

from keyrot.openai_admin import OpenAIAdminClient, OpenAITransport
from keyrot.secret_model import AdminCredentials
from lab.monitor_scenario import MonitorWorld
from lab.openai_standin.audit import Actor
from lab.openai_standin.state import OWNER_EMAIL, OWNER_USER_ID
from lab.scenario import FAST_RETRY


def record_admin_key_id(world: MonitorWorld) -> str:
    """Store the world's admin key again with its id (as `keyrot admin-key set --key-id` does); returns the id."""
    rotation = world.rotation
    key_id = rotation.openai.state.admin_keys[rotation.admin_key].id
    rotation.secrets.put_secret_value(
        SecretId=rotation.admin_secret_arn, SecretString=AdminCredentials(rotation.admin_key, key_id).to_json()
    )
    return key_id


def another_admin(world: MonitorWorld, email: str = OWNER_EMAIL) -> tuple[OpenAIAdminClient, str]:
    """An admin key someone else holds (made in the console by `email`): a client with it, and its id."""
    state = world.rotation.openai.state
    actor = Actor.session(OWNER_USER_ID if email == OWNER_EMAIL else "user_other", email)
    key = state.create_admin_key("made by hand", expires_in=None, actor=actor)
    transport = OpenAITransport(world.settings.openai_base_url, retry=FAST_RETRY, sleep=lambda _: None)
    return OpenAIAdminClient(key.value, transport), key.id


def subjects(world: MonitorWorld) -> list[str]:
    return [note["subject"] for note in world.notifications()]


def later(world: MonitorWorld, seconds: int = 300) -> None:
    """Move the shared clock on (actions and runs then happen at distinct times, as they do outside a test)."""
    world.clock.advance(seconds)
