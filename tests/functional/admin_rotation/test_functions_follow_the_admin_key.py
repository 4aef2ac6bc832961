"""The functions read the admin key per invocation: once the admin key rotated and the old one is deleted, a warm
rotation function keeps working with the new one. That is why a short grace is enough."""

from __future__ import annotations

import pytest

from keyrot.handlers import rotate
from lab.rotation_driver import RotationDriver
from lab.scenario import RotationWorld

from .world import AdminWorld


def test_a_warm_rotation_function_uses_the_new_admin_key_after_the_old_one_is_deleted(
    world: RotationWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the application rotation function, deployed and warm (it has rotated a key once)
    arn = world.create_managed_secret("chat-backend")
    for name, value in world.environment_variables().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEYROT_VALIDATION_DELAY_SECONDS", "0.01")
    driver = RotationDriver(world.secrets, lambda event: rotate.handler(event, None))
    assert driver.rotate(arn).succeeded
    # AND the admin key rotated, the old one deleted at once (no grace, the bootstrap key opted in)
    admin = AdminWorld.adopt(world, grace_period_seconds=0, delete_bootstrap_key=True)
    admin.rotate()
    assert not admin.authenticates(world.admin_key)
    # WHEN the warm function rotates again
    run = driver.rotate(arn)
    # THEN it succeeds, with the new admin key
    assert run.succeeded, run.failures
    minted = world.openai.calls_to("create_service_account")[-1]
    assert minted.key_id == admin.current().key_id
