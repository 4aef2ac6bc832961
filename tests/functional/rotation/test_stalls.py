"""A rotation that stalls between createSecret and finishSecret (admin key revoked, billing limit, a weekend) and is
then resumed: its key is promoted only if its OpenAI-side expiry still covers the next rotation plus the maximum grace;
otherwise it is discarded and the next rotation mints afresh. (Issue 18: 1 h, 25 h and 5-day stalls.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from keyrot.rotation import StalePendingKeyError
from lab.openai_standin import ManualClock, OpenAIStandIn
from lab.scenario import RotationWorld

DAY, HOUR = 86400, 3600
INTERVAL, MAX_GRACE = 7 * DAY, 3 * DAY
EXPIRY = INTERVAL + MAX_GRACE + DAY  # the stack's default: interval + maximum grace + 24 h


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000)


@pytest.fixture
def weekly(clock: ManualClock, secrets_client: Any) -> Iterator[RotationWorld]:
    """A weekly schedule, 24 h grace, 3-day maximum grace, keys expiring after 11 days; OpenAI on the same clock."""
    with OpenAIStandIn(clock=clock) as openai:
        yield RotationWorld.create(
            openai,
            secrets_client,
            now=lambda: datetime.fromtimestamp(clock(), UTC),
            rotation_interval_seconds=INTERVAL,
            max_grace_period_seconds=MAX_GRACE,
            key_expiry_seconds=EXPIRY,
        )


def _stalled(world: RotationWorld, clock: ManualClock, stall: int, *, before: str = "testSecret") -> tuple[str, str]:
    """A rotated secret whose next rotation minted its key, then stalled `stall` seconds before `before`."""
    arn = world.create_managed_secret("chat-backend")
    assert world.driver().rotate(arn).succeeded
    driver = world.driver()
    token = driver.start(arn)
    steps = ["createSecret", "setSecret", "testSecret", "finishSecret"]
    for step in steps[: steps.index(before)]:
        driver.step(arn, token, step)
    clock.advance(stall)
    return arn, token


def test_a_one_hour_stall_is_resumed_and_promoted(weekly: RotationWorld, clock: ManualClock) -> None:
    # GIVEN a rotation stalled one hour after minting
    arn, token = _stalled(weekly, clock, HOUR)
    pending = weekly.pending(arn)
    # WHEN Secrets Manager's retry resumes it THEN its key is promoted (10 days 23 hours of life left)
    assert weekly.driver().rotate(arn, token=token).succeeded
    assert pending is not None and weekly.current(arn).key_id == pending.key_id


@pytest.mark.parametrize("stall", [25 * HOUR, 5 * DAY], ids=["25h", "5d"])
def test_a_long_stall_is_discarded_not_promoted(weekly: RotationWorld, clock: ManualClock, stall: int) -> None:
    # GIVEN a rotation stalled long enough that its key would expire before the next rotation plus maximum grace
    arn, token = _stalled(weekly, clock, stall)
    current, pending = weekly.current(arn), weekly.pending(arn)
    assert pending is not None
    # WHEN testSecret resumes it
    with pytest.raises(StalePendingKeyError, match="keyrot rotate --env dev --key chat-backend") as caught:
        weekly.driver().step(arn, token, "testSecret")
    # THEN it says why and what to do; AWSCURRENT is unchanged and works; the attempt is gone (label and account)
    assert "would die in use" in str(caught.value) and "AWSCURRENT is unchanged" in str(caught.value)
    assert weekly.current(arn) == current and weekly.openai.state.key_is_live(current.key_id)
    assert "AWSPENDING" not in weekly.stages(arn)[token]
    assert not weekly.openai.state.key_is_live(pending.key_id)
    # AND the next rotation mints a fresh key with its whole life ahead of it
    assert weekly.driver().rotate(arn).succeeded
    fresh = weekly.current(arn)
    assert fresh.key_id != pending.key_id and fresh.expires_at is not None
    assert (fresh.expires_at - weekly.now()).total_seconds() >= INTERVAL + MAX_GRACE


def test_a_stall_between_test_and_finish_is_refused_by_finish(weekly: RotationWorld, clock: ManualClock) -> None:
    # GIVEN a rotation validated, then stalled five days before finishSecret
    arn, token = _stalled(weekly, clock, 5 * DAY, before="finishSecret")
    current = weekly.current(arn)
    # WHEN finishSecret runs THEN it refuses to promote, and discards the attempt
    with pytest.raises(StalePendingKeyError):
        weekly.driver().step(arn, token, "finishSecret")
    assert weekly.current(arn) == current
    assert "AWSPENDING" not in weekly.stages(arn)[token]


def test_after_a_five_day_stall_the_current_key_lives_until_the_next_rotation(
    weekly: RotationWorld, clock: ManualClock
) -> None:
    # GIVEN a 5-day stall, refused, and the fresh rotation that follows
    arn, token = _stalled(weekly, clock, 5 * DAY)
    run = weekly.driver().rotate(arn, token=token, max_attempts=1)
    assert not run.succeeded and isinstance(run.failures[0][1], StalePendingKeyError)
    assert weekly.driver().rotate(arn).succeeded
    current = weekly.current(arn)
    # WHEN the schedule's next rotation is due (one interval later, plus the whole maximum grace after it)
    clock.advance(INTERVAL + MAX_GRACE - 60)
    # THEN the key applications hold still authenticates (issue 18: it died a day before the next rotation)
    assert weekly.openai.state.key_is_live(current.key_id)
