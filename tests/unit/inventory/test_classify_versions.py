"""The inventory's states for keys a secret version holds: labels decide, OpenAI's listing confirms, time counts from
promotion."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.inventory import DisplacedReason, KeyState

from .builders import GRACE, HOUR, NOW, keyrot_account, run, secret, token, version


def test_the_current_version_is_current_with_the_promotion_time_its_tag_records() -> None:
    # GIVEN a secret whose current version was promoted 2 hours ago, its key minted 3 days ago (a stalled rotation)
    promoted = NOW - timedelta(hours=2)
    record = secret(version(2, STAGE_CURRENT, created=NOW - timedelta(days=3)), promoted=(2, promoted))
    # WHEN classified
    inventory = run([record], [keyrot_account(2)])
    # THEN the current key is CURRENT and its promotion time is the tag's, not its minting
    (entry,) = inventory.secrets[0].entries
    assert (entry.state, entry.key_id, entry.promoted_at) == (KeyState.CURRENT, "key_2", promoted)
    assert inventory.secrets[0].promoted_at == promoted


def test_promotion_falls_back_to_the_current_keys_creation_when_the_tag_names_another_version() -> None:
    # GIVEN a promotion record left by an earlier rotation (or an abandoned finishSecret) for another version
    minted = NOW - timedelta(days=2)
    record = secret(version(2, STAGE_CURRENT, created=minted), promoted=(7, NOW - timedelta(hours=1)))
    # WHEN classified THEN the current key counts as promoted when it was minted
    assert run([record], [keyrot_account(2)]).secrets[0].promoted_at == minted


def test_the_key_stored_in_the_pending_version_is_pending() -> None:
    record = secret(version(1, STAGE_CURRENT), version(2, STAGE_PENDING))
    inventory = run([record], [keyrot_account(1), keyrot_account(2)])
    assert [(e.key_id, e.state) for e in inventory.secrets[0].entries] == [
        ("key_1", KeyState.CURRENT),
        ("key_2", KeyState.PENDING),
    ]


@pytest.mark.parametrize(("hours_since_promotion", "in_grace"), [(0, True), (23.99, True), (24, False), (100, False)])
def test_the_previous_key_retires_at_the_promotion_and_is_in_grace_until_the_grace_period_ends(
    hours_since_promotion: float, in_grace: bool
) -> None:
    # GIVEN a previous key whose successor was promoted `hours_since_promotion` ago (and minted a week earlier)
    promoted = NOW - timedelta(hours=hours_since_promotion)
    record = secret(
        version(1, STAGE_PREVIOUS),
        version(2, STAGE_CURRENT, created=promoted - timedelta(days=7)),
        promoted=(2, promoted),
    )
    # WHEN classified
    previous = run([record], [keyrot_account(1), keyrot_account(2)]).secrets[0].previous
    # THEN it is PREVIOUS, retired at the promotion, in grace only within GRACE of it
    assert previous is not None
    assert (previous.state, previous.retired_at, previous.in_grace) == (KeyState.PREVIOUS, promoted, in_grace)


def test_a_previous_key_whose_account_is_not_listed_stays_previous_for_the_revocation_to_confirm() -> None:
    # GIVEN a previous key OpenAI does not list (deleted by hand, or a listing that lags)
    record = secret(version(1, STAGE_PREVIOUS), version(2, STAGE_CURRENT))
    # WHEN classified THEN it is still PREVIOUS, marked unlisted: revoking it probes before recording anything
    previous = run([record], [keyrot_account(2)]).secrets[0].previous
    assert previous is not None and (previous.state, previous.listed) == (KeyState.PREVIOUS, False)


def test_a_key_labelled_revoked_that_openai_no_longer_lists_is_revoked() -> None:
    record = secret(version(1, STAGE_PREVIOUS, STAGE_REVOKED), version(2, STAGE_CURRENT))
    entries = run([record], [keyrot_account(2)]).secrets[0].entries
    (revoked,) = [e for e in entries if e.key_id == "key_1"]
    assert (revoked.key_id, revoked.state, revoked.listed) == ("key_1", KeyState.REVOKED, False)


def test_a_key_labelled_revoked_that_openai_still_lists_is_displaced_revoked_but_live() -> None:
    # GIVEN the KEYROT_REVOKED label on a version whose account OpenAI still lists (a label is a record, not proof)
    record = secret(version(1, STAGE_PREVIOUS, STAGE_REVOKED), version(2, STAGE_CURRENT))
    # WHEN classified
    entries = run([record], [keyrot_account(1), keyrot_account(2)]).secrets[0].entries
    # THEN it is DISPLACED, for that reason, and keeps its version (the revocation acts through it)
    (entry,) = [e for e in entries if e.key_id == "key_1"]
    assert (entry.state, entry.reason, entry.version_id) == (
        KeyState.DISPLACED,
        DisplacedReason.REVOKED_BUT_LIVE,
        token(1),
    )


def test_an_unlabelled_version_whose_account_is_still_listed_is_displaced() -> None:
    # GIVEN two rotations inside one grace period: version 1 lost AWSPREVIOUS unrevoked
    record = secret(version(1), version(2, STAGE_PREVIOUS), version(3, STAGE_CURRENT))
    # WHEN classified THEN its key is DISPLACED (unlabelled), with the version that holds it
    entries = run([record], [keyrot_account(n) for n in (1, 2, 3)]).secrets[0].entries
    (entry,) = [e for e in entries if e.key_id == "key_1"]
    assert (entry.state, entry.reason, entry.version_id) == (KeyState.DISPLACED, DisplacedReason.UNLABELLED, token(1))


def test_an_unlabelled_version_whose_account_is_gone_is_revoked() -> None:
    record = secret(version(1), version(2, STAGE_CURRENT))
    entries = run([record], [keyrot_account(2)]).secrets[0].entries
    assert [(e.key_id, e.state) for e in entries] == [("key_2", KeyState.CURRENT), ("key_1", KeyState.REVOKED)]


def test_an_empty_pending_placeholder_is_no_key() -> None:
    # GIVEN a rotation that has created its placeholder and nothing else
    record = secret(version(1, STAGE_CURRENT), version(2, STAGE_PENDING, stored=False))
    # WHEN classified THEN only the current key is there
    assert [e.key_id for e in run([record], [keyrot_account(1)]).secrets[0].entries] == ["key_1"]


def test_without_an_openai_listing_the_labels_decide_alone_and_nothing_is_displaced() -> None:
    # GIVEN no listing from OpenAI (a caller without the admin key)
    record = secret(version(1, STAGE_PREVIOUS, STAGE_REVOKED), version(2, STAGE_CURRENT), version(0))
    # WHEN classified THEN labelled and unlabelled versions read as revoked, listed unknown
    entries = run([record], listed=False).secrets[0].entries
    assert {(e.key_id, e.state, e.listed) for e in entries} == {
        ("key_2", KeyState.CURRENT, None),
        ("key_1", KeyState.REVOKED, None),
        ("key_0", KeyState.REVOKED, None),
    }


def test_a_version_naming_an_account_keyrot_did_not_mint_for_it_is_flagged_and_that_account_reported() -> None:
    # GIVEN a (forged) previous value that names an account of someone else in the project
    record = secret(version(1, STAGE_PREVIOUS), version(2, STAGE_CURRENT))
    foreign = keyrot_account(1)
    foreign = type(foreign)(id="svc_acct_1", name="billing-exporter", role="member", created_at=foreign.created_at)
    # WHEN classified
    inventory = run([record], [foreign, keyrot_account(2)])
    # THEN the version's entry says so, and the account is reported on its own as unmanaged
    previous = inventory.secrets[0].previous
    assert previous is not None and previous.problem is not None and "billing-exporter" not in previous.problem
    assert "not keyrot's" in previous.problem
    assert [e.account_name for e in inventory.of_state(KeyState.UNMANAGED)] == ["billing-exporter"]


def test_retirement_counts_from_promotion_so_a_stalled_rotation_does_not_age_the_old_key() -> None:
    # GIVEN a rotation that sat 25 hours in AWSPENDING, promoted a minute ago
    promoted = NOW - timedelta(minutes=1)
    record = secret(
        version(1, STAGE_PREVIOUS),
        version(2, STAGE_CURRENT, created=promoted - timedelta(hours=25)),
        promoted=(2, promoted),
    )
    # WHEN classified THEN the key it replaced has 24 hours of grace ahead of it, not a day behind it
    previous = run([record], [keyrot_account(1), keyrot_account(2)]).secrets[0].previous
    assert previous is not None and previous.in_grace
    assert previous.retired_at is not None and previous.retired_at + timedelta(seconds=GRACE) > NOW + 23 * timedelta(
        seconds=HOUR
    )
