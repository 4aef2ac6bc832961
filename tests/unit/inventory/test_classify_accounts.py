"""The inventory's states for what OpenAI lists that no version stores: attempts, abandoned attempts, other
environments' keys, and everything unmanaged. One rule for "attempt in progress", whoever asks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS
from keyrot.inventory import DisplacedReason, KeyState

from .builders import (
    BOUND,
    NOW,
    account,
    account_name,
    api_key,
    key_of,
    keyrot_account,
    run,
    secret,
    token,
    version,
)


def _state_of(inventory_entries: list, account_id: str) -> KeyState:
    (entry,) = [e for e in inventory_entries if e.service_account_id == account_id]
    return entry.state


@pytest.mark.parametrize("age_hours", [0, 2, 72])
def test_an_account_named_for_the_pending_token_is_an_attempt_in_progress_whatever_its_age(age_hours: int) -> None:
    # GIVEN a rotation stuck in AWSPENDING (placeholder only) whose createSecret minted an account long ago
    record = secret(version(1, STAGE_CURRENT), version(2, STAGE_PENDING, stored=False))
    minted = keyrot_account(2, created=NOW - timedelta(hours=age_hours))
    # WHEN classified THEN the account is an attempt in progress (a resumed createSecret still stores or sweeps it)
    inventory = run([record], [keyrot_account(1), minted])
    assert _state_of(list(inventory.entries), "svc_acct_2") is KeyState.ATTEMPT_IN_PROGRESS


@pytest.mark.parametrize(
    ("age", "state"),
    [
        (0, KeyState.ATTEMPT_IN_PROGRESS),
        (BOUND - 1, KeyState.ATTEMPT_IN_PROGRESS),
        (BOUND, KeyState.DISPLACED),
        (30 * 86400, KeyState.DISPLACED),
    ],
)
def test_an_account_for_a_token_no_label_holds_is_in_progress_within_the_bound_then_abandoned(
    age: int, state: KeyState
) -> None:
    # GIVEN a keyrot account of this environment and key for a token that is no version the read saw (the read
    # may predate its placeholder), `age` seconds old
    record = secret(version(1, STAGE_CURRENT))
    minted = keyrot_account(9, created=NOW - timedelta(seconds=age))
    # WHEN classified
    inventory = run([record], [keyrot_account(1), minted])
    # THEN it is an attempt in progress younger than ROTATION_TIMEOUT + CLOCK_SKEW, an abandoned attempt after
    (entry,) = [e for e in inventory.entries if e.service_account_id == "svc_acct_9"]
    assert entry.state is state
    assert entry.reason is (DisplacedReason.ABANDONED_ATTEMPT if state is KeyState.DISPLACED else None)
    assert (entry.version_id, entry.token) == (None, token(9))


def test_a_twin_account_of_a_promoted_version_is_abandoned_once_older_than_the_bound() -> None:
    # GIVEN the current version stores svc_acct_1; a second account named for the same token (a lost create's twin)
    record = secret(version(1, STAGE_CURRENT))
    twin = account("svc_acct_twin", account_name(token(1)), created=NOW - timedelta(hours=1))
    # WHEN classified THEN the twin is displaced, and the current key stays current
    inventory = run([record], [keyrot_account(1), twin])
    assert _state_of(list(inventory.entries), "svc_acct_twin") is KeyState.DISPLACED
    assert _state_of(list(inventory.entries), "svc_acct_1") is KeyState.CURRENT


def test_keyrot_accounts_of_a_declared_shared_environment_are_another_environments() -> None:
    prod = account("svc_acct_p", account_name(token(5), environment="prod"), created=NOW)
    inventory = run([secret(version(1, STAGE_CURRENT))], [keyrot_account(1), prod], shared=("prod",))
    assert _state_of(list(inventory.entries), "svc_acct_p") is KeyState.OTHER_ENVIRONMENT


def test_keyrot_accounts_of_an_undeclared_environment_are_unmanaged() -> None:
    # GIVEN a service account named as keyrot would name it for an environment nobody declared
    decoy = account("svc_acct_x", account_name(token(5), environment="staging"), created=NOW)
    # WHEN classified with only prod declared THEN it is reported, not excused by its name
    inventory = run([secret(version(1, STAGE_CURRENT))], [keyrot_account(1), decoy], shared=("prod",))
    (entry,) = inventory.of_state(KeyState.UNMANAGED)
    assert entry.service_account_id == "svc_acct_x" and "not declared" in (entry.problem or "")


def test_an_older_deployment_that_declares_no_sharing_treats_every_keyrot_environment_as_another() -> None:
    staging = account("svc_acct_s", account_name(token(5), environment="staging"), created=NOW)
    inventory = run([secret(version(1, STAGE_CURRENT))], [keyrot_account(1), staging], shared=None)
    assert _state_of(list(inventory.entries), "svc_acct_s") is KeyState.OTHER_ENVIRONMENT


def test_a_keyrot_account_for_a_key_this_environment_does_not_manage_is_unmanaged() -> None:
    stray = account("svc_acct_s", account_name(token(5), key_name="batch"), created=NOW - timedelta(days=1))
    inventory = run([secret(version(1, STAGE_CURRENT))], [keyrot_account(1), stray])
    (entry,) = inventory.of_state(KeyState.UNMANAGED)
    assert entry.service_account_id == "svc_acct_s" and "does not manage" in (entry.problem or "")


def test_user_keys_and_other_service_accounts_are_unmanaged() -> None:
    # GIVEN a key a developer made in the dashboard, and a service account someone created by hand
    laptop = api_key("key_laptop", owner_id="user_1", owner_name="A Developer", owner_type="user")
    exporter = account("svc_acct_e", "billing-exporter", created=NOW - timedelta(days=3))
    # WHEN classified THEN both are unmanaged, the user key by key id
    inventory = run([secret(version(1, STAGE_CURRENT))], [keyrot_account(1), exporter], [laptop])
    found = {(e.key_id, e.service_account_id, e.owner_type) for e in inventory.of_state(KeyState.UNMANAGED)}
    assert found == {("key_laptop", None, "user"), (None, "svc_acct_e", "service_account")}


def test_an_extra_key_on_a_keyrot_account_is_unmanaged() -> None:
    # GIVEN the current key's account carrying a second key keyrot never minted
    owner = keyrot_account(1)
    inventory = run([secret(version(1, STAGE_CURRENT))], [owner], [key_of(owner, "key_1"), key_of(owner, "key_extra")])
    # WHEN classified THEN the stored key is current and the extra one unmanaged
    assert inventory.by_key_id("key_1").state is KeyState.CURRENT  # type: ignore[union-attr]
    extra = inventory.by_key_id("key_extra")
    assert extra is not None and extra.state is KeyState.UNMANAGED and "extra key" in (extra.problem or "")


def test_accounts_of_a_secret_that_could_not_be_read_are_unverified_never_displaced() -> None:
    # GIVEN a managed secret that could not be read this time, and an old account of its key
    unreadable = secret(problem="cannot be read: AWS DescribeSecret failed: AccessDeniedException")
    old = keyrot_account(1, created=NOW - timedelta(days=30))
    # WHEN classified THEN that account is neither revoked nor reported as unmanaged; the secret is a problem
    inventory = run([unreadable], [old])
    assert _state_of(list(inventory.entries), "svc_acct_1") is KeyState.UNVERIFIED
    assert inventory.problems == ((unreadable.name, unreadable.problem),)


def test_a_listed_key_carries_its_last_use() -> None:
    owner = keyrot_account(1)
    used = NOW - timedelta(minutes=5)
    record = secret(version(1, STAGE_PREVIOUS), version(2, STAGE_CURRENT))
    inventory = run([record], [owner, keyrot_account(2)], [key_of(owner, "key_1", last_used=used)])
    assert inventory.by_key_id("key_1").last_used_at == used  # type: ignore[union-attr]
