"""The state's compare-and-swap: a claim wins only as the version right after the one its run read; readers skip
claims that lost. (tests/prove/test_monitor_lease.py interleaves two whole runs at every pair of calls.)"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from keyrot.monitor.state import MAX_LOSING_CLAIMS, Lease, MonitorState, MonitorStateError, StateStore

NAME = "/keyrot/dev/monitor-state"
T = 1_800_000_000 - 1_800_000_000 % 60


class RetryingSsm:
    """An SSM client whose PutParameter lands twice, as botocore's retry after a lost answer does."""

    def __init__(self, ssm: Any) -> None:
        self._ssm = ssm

    def put_parameter(self, **kwargs: Any) -> Any:
        self._ssm.put_parameter(**kwargs)
        return self._ssm.put_parameter(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ssm, name)


@pytest.fixture
def ssm(aws: None) -> Any:
    return boto3.client("ssm", region_name="us-east-1")


def _held(owner: str, watermark: int = T) -> MonitorState:
    return MonitorState(watermark=watermark, lease=Lease(owner, T + 300))


def test_a_claim_on_the_latest_version_wins(ssm: Any) -> None:
    # GIVEN a state at version 1
    store = StateStore(ssm, NAME)
    store.save(MonitorState(watermark=T))
    snapshot = store.read()
    # WHEN a run claims it THEN it wins, and readers see its lease
    assert store.claim(_held("run-a"), snapshot.latest)
    held = store.read().state
    assert held is not None and held.lease == Lease("run-a", T + 300) and held.claim is None


def test_a_claim_after_another_write_loses_and_readers_skip_it(ssm: Any) -> None:
    # GIVEN two runs that read the same version, and A's claim first
    store = StateStore(ssm, NAME)
    store.save(MonitorState(watermark=T))
    read_by_both = store.read().latest
    assert store.claim(_held("run-a"), read_by_both)
    # WHEN B claims on the version it read THEN it loses
    assert not store.claim(_held("run-b", watermark=T - 600), read_by_both)
    # AND readers still see A's state, not B's losing copy (which is the latest version)
    state = store.read().state
    assert state is not None and state.lease is not None and state.lease.owner == "run-a" and state.watermark == T


def test_a_claim_written_twice_by_a_retry_still_wins(ssm: Any) -> None:
    # GIVEN a state, and a PutParameter that lands twice (its first answer was lost and botocore retried it)
    StateStore(ssm, NAME).save(MonitorState(watermark=T))
    store = StateStore(RetryingSsm(ssm), NAME)
    # WHEN a run claims THEN the claim is its own at the version after the one it read: it won
    assert store.claim(_held("run-a"), store.read().latest)
    state = store.read().state
    assert state is not None and state.lease is not None and state.lease.owner == "run-a"


def test_a_first_run_claims_a_parameter_that_does_not_exist_yet(ssm: Any) -> None:
    store = StateStore(ssm, NAME)
    snapshot = store.read()
    assert (snapshot.state, snapshot.latest) == (None, 0)
    assert store.claim(_held("run-a"), snapshot.latest)


def test_more_losing_claims_than_runs_can_overlap_is_an_error_not_a_guess(ssm: Any) -> None:
    # GIVEN a state buried under more losing claims than MAX_LOSING_CLAIMS
    store = StateStore(ssm, NAME)
    store.save(MonitorState(watermark=T))
    for number in range(MAX_LOSING_CLAIMS + 1):
        assert not store.claim(_held(f"run-{number}"), 0)
    # WHEN the state is read THEN the monitor says so instead of taking a claim for the state
    with pytest.raises(MonitorStateError, match="claims that lost"):
        store.read()
