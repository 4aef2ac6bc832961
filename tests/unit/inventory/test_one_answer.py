"""One rule for "is this account an attempt in progress": the monitor's findings and `keyrot audit` fed the same state
report the same keys (issue 17: the monitor said "younger than an hour", audit said "token still AWSPENDING")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot.cli.drift import find_drift
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS
from keyrot.inventory import KeyState, OpenAIListing, classify
from keyrot.monitor.attribution import reportable_keys
from keyrot.monitor.ledger import ledger_of

from .builders import BOUND, ENV, GRACE, NOW, PROJECT, account, account_name, key_of, secret, token, version


def _both(accounts: list, pending_stored: bool = False) -> tuple[set[str], set[str], object]:
    """(keys the monitor reports, keys audit reports as drift, the inventory) for one state."""
    record = secret(
        version(1, STAGE_PREVIOUS), version(2, STAGE_CURRENT), version(3, STAGE_PENDING, stored=pending_stored)
    )
    keys = [key_of(a, f"key_of_{a.id}") for a in accounts]
    inventory = classify(
        [record],
        OpenAIListing.of(accounts, keys),
        environment=ENV,
        shared_environments=("prod",),
        now=NOW,
        grace_period_seconds=GRACE,
    )
    monitor = set(reportable_keys(inventory))
    drift = find_drift(
        ledger_of([record]),
        {PROJECT: accounts},
        {PROJECT: keys},
        environment=ENV,
        now=NOW,
        grace=timedelta(seconds=GRACE),
        shared_environments=("prod",),
    )
    return monitor, drift.reported_key_ids, inventory


@pytest.mark.parametrize(
    ("which", "age", "state"),
    [
        # named for the pending token, two hours old: the monitor called it an orphan, audit "in progress"
        (3, 2 * 3600, KeyState.ATTEMPT_IN_PROGRESS),
        # named for a token no label holds, thirty minutes old: the monitor called it "in progress", audit an orphan
        (9, 30 * 60, KeyState.DISPLACED),
        # the same, seconds old: an invocation may still store it
        (9, 5, KeyState.ATTEMPT_IN_PROGRESS),
    ],
)
def test_the_cases_the_two_rules_disagreed_on_get_one_answer(which: int, age: int, state: KeyState) -> None:
    # GIVEN a keyrot account of this environment and key that no version stores
    minted = account(f"svc_acct_{which}x", account_name(token(which)), created=NOW - timedelta(seconds=age))
    # WHEN the monitor's findings and audit look at the same state
    monitor, audit, inventory = _both([minted])
    # THEN they report the same keys, as the inventory's one rule decides
    assert monitor == audit
    assert inventory.by_account(minted.id).state is state  # type: ignore[attr-defined]
    assert (f"key_of_{minted.id}" in monitor) is (state is KeyState.DISPLACED)


@settings(max_examples=150, deadline=None)
@given(
    accounts=st.lists(
        st.tuples(
            st.sampled_from([1, 2, 3, 7, 8, 9]),  # previous, current, pending, or tokens no label holds
            st.sampled_from([0, BOUND - 1, BOUND, 1800, 3599, 3600, 7200, 40 * 86400]),
            st.sampled_from(["chat", "batch"]),
            st.sampled_from([ENV, "prod", "staging"]),
        ),
        max_size=6,
    ),
    pending_stored=st.booleans(),
)
def test_the_monitor_and_audit_report_the_same_keys_for_any_state(accounts: list, pending_stored: bool) -> None:
    # GIVEN any mix of keyrot accounts (this and other environments, managed and unmanaged key names, any age)
    listed = [
        account(
            f"svc_acct_{index}_{which}",
            account_name(token(which), key_name, environment=environment),
            created=NOW - timedelta(seconds=age),
        )
        for index, (which, age, key_name, environment) in enumerate(accounts)
    ]
    # WHEN both call sites classify it THEN they report the same keys
    monitor, audit, _ = _both(listed, pending_stored)
    assert monitor == audit
