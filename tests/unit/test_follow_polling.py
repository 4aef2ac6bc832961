"""`keyrot rotate` notices the end of a rotation soon after it happens: checks start every 50 ms and slow down with
the rotation's age, so the leaked key of an emergency is revoked within a quarter of the rotation's duration of its
end, never a whole poll interval later (benchmark 7, time to contain)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot.aws.secrets import SecretDescription
from keyrot.cli.follow import FIRST_POLL_SECONDS, POLL_FRACTION, RotationFollower

TOKEN = "11111111-2222-4333-8444-555555555555"
OLD = "00000000-2222-4333-8444-555555555555"


@dataclass
class FakeClock:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class RotationThatEnds:
    """A rotation that is pending until `ends_at` (fake clock time), then complete; counts DescribeSecret."""

    clock: FakeClock
    ends_at: float
    describes: int = 0

    def describe(self, arn: str) -> SecretDescription:
        self.describes += 1
        if self.clock.now < self.ends_at:
            versions = {OLD: ("AWSCURRENT",), TOKEN: ("AWSPENDING",)}
        else:
            versions = {OLD: ("AWSPREVIOUS",), TOKEN: ("AWSCURRENT",)}
        return SecretDescription(arn, "keyrot/dev/chat", True, "arn:lambda", (), versions)

    def get_string(self, arn: str, *, stage: str | None = None, version_id: str | None = None) -> str | None:
        return "stored"


def _follow(duration: float, poll_seconds: float) -> tuple[float, FakeClock, RotationThatEnds]:
    """Follow a rotation that takes `duration` seconds; returns how late its end was noticed."""
    clock = FakeClock()
    store = RotationThatEnds(clock, ends_at=clock.now + duration)
    follower = RotationFollower(
        store=store,  # type: ignore[arg-type]
        arn="arn:secret",
        name="keyrot/dev/chat",
        token=TOKEN,
        log=None,
        poll_seconds=poll_seconds,
        timeout_seconds=duration + 3600,
        report=lambda progress: None,
        sleep=clock.sleep,
        clock=lambda: clock.now,
    )
    follower.run()
    return clock.now - store.ends_at, clock, store


def test_a_one_second_rotation_is_noticed_well_within_the_default_two_second_poll() -> None:
    # GIVEN the default --poll-interval of 2 s and a rotation that takes 1 s (an emergency's rotation function)
    # WHEN it is followed
    late, _, _ = _follow(1.0, poll_seconds=2.0)
    # THEN its end is seen within a quarter of its duration (before: up to 2 s late)
    assert late <= 0.25


@settings(deadline=None)
@given(
    duration=st.floats(min_value=0.0, max_value=300.0, allow_nan=False),
    poll_seconds=st.floats(min_value=0.05, max_value=30.0, allow_nan=False),
)
def test_the_end_is_noticed_within_a_quarter_of_the_rotation_and_never_later_than_one_poll(
    duration: float, poll_seconds: float
) -> None:
    # GIVEN any rotation length and any --poll-interval
    # WHEN it is followed
    late, clock, _ = _follow(duration, poll_seconds)
    # THEN the end is noticed no later than one poll interval, and no later than a quarter of the rotation's
    # duration (or the first 50 ms check)
    assert late <= poll_seconds + 1e-9
    assert late <= max(FIRST_POLL_SECONDS, POLL_FRACTION * duration) + 1e-9
    # AND no wait is ever longer than --poll-interval
    assert all(wait <= poll_seconds + 1e-12 for wait in clock.sleeps)


def test_a_long_rotation_costs_a_few_dozen_checks_not_one_every_50_ms() -> None:
    # GIVEN a scheduled-size rotation of 10 minutes, followed with the default 2 s poll
    # WHEN it is followed
    _, _, store = _follow(600.0, poll_seconds=2.0)
    # THEN the checks slow down to the poll interval: about 300 at 2 s, plus the ramp, not 12,000 at 50 ms
    assert store.describes <= 600 / 2.0 + 40
