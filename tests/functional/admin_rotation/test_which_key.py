"""The admin key being rotated is also the key the steps call OpenAI with: each step uses the key it must."""

from __future__ import annotations

from lab.openai_standin.audit import Actor

from .world import AdminWorld


def _callers(world: AdminWorld) -> dict[str, set[str | None]]:
    """Stand-in endpoint -> the admin key ids that called it."""
    found: dict[str, set[str | None]] = {}
    for call in world.openai.calls:
        found.setdefault(call.endpoint, set()).add(call.key_id)
    return found


def test_create_secret_mints_with_the_current_key(admin_world: AdminWorld) -> None:
    # GIVEN a rotation started
    world = admin_world
    driver = world.driver()
    token = driver.start(world.arn)
    world.openai.reset_calls()
    # WHEN createSecret runs
    driver.step(world.arn, token, "createSecret")
    # THEN every call it made used the current (bootstrap) key
    assert set().union(*_callers(world).values()) == {world.bootstrap_key_id}
    assert world.openai.calls_to("create_admin_api_key")


def test_test_secret_validates_with_the_pending_key_itself(admin_world: AdminWorld) -> None:
    # GIVEN a minted pending admin key
    world = admin_world
    driver = world.driver()
    token = driver.start(world.arn)
    driver.step(world.arn, token, "createSecret")
    pending = world.pending()
    assert pending is not None
    world.openai.reset_calls()
    # WHEN testSecret runs
    driver.step(world.arn, token, "testSecret")
    # THEN each capability was exercised with the pending key, and the current key was not used at all
    callers = _callers(world)
    assert set().union(*callers.values()) == {pending.key_id}
    expected = {
        "list_admin_api_keys",
        "get_admin_api_key",
        "list_service_accounts",
        "create_service_account",
        "delete_service_account",
        "list_project_api_keys",
        "usage",
        "costs",
        "list_audit_logs",
    }
    assert expected <= set(callers), expected - set(callers)


def test_the_old_key_is_deleted_with_the_new_key(admin_world: AdminWorld) -> None:
    # GIVEN an admin key rotated twice, the grace of the first keyrot key over
    world = admin_world
    world.rotate()
    first = world.current()
    world.advance(world.settings.grace_period_seconds + 1)
    world.rotate()
    newest = world.current()
    world.advance(world.settings.grace_period_seconds + 1)
    # WHEN the cleanup runs
    cleanup = world.cleanup()
    # THEN the first keyrot key is deleted, by the newest key (as OpenAI's audit log records it)
    assert [doomed.key_id for doomed in cleanup.deleted] == [first.key_id]
    assert not world.authenticates(first.admin_key)
    deletions = [e for e in world.openai.state.audit.events if e.type == "tenant.admin_api_key.deleted"]
    assert [(e.resource_id, e.actor) for e in deletions] == [(first.key_id, _actor_of(world, newest.key_id))]


def _actor_of(world: AdminWorld, key_id: str | None) -> Actor:
    return world.admin_key(key_id or "").actor
