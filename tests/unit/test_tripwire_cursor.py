"""The audit-log cursor the monitor keeps in its state: every event is delivered once, late arrivals within the
lookback included, and the cursor stays small however busy the log is."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot.monitor.audit_stream import LOOKBACK_SECONDS, advance
from keyrot.monitor.state import AUDIT_SEEN_HARD_MAX, AUDIT_SEEN_MAX, AuditState, AuditStream, MonitorState
from keyrot.openai_admin import AuditEvent, MalformedAuditEvent
from keyrot.openai_admin.audit_log import AuditEntry

SINCE = 1_800_000_000


@dataclass(frozen=True)
class Listed:
    """An event in OpenAI's log: when it took effect, and from when OpenAI lists it."""

    id: str
    effective_at: int
    visible_from: int

    def entry(self) -> AuditEvent:
        return AuditEvent(self.id, "api_key.created", self.effective_at, None, "proj_1", "key_1")


def _listing(log: list[Listed], stream: AuditStream, now: int) -> list[AuditEntry]:
    """What OpenAI answers a read starting `stream.window` before `stream.at`: visible events from there, oldest
    first (the client reverses OpenAI's newest-first order)."""
    start = stream.at - stream.window
    found = [event for event in log if event.visible_from <= now and event.effective_at >= start]
    return [event.entry() for event in sorted(found, key=lambda event: (event.effective_at, event.id))]


def _reads(log: list[Listed], read_times: list[int]) -> list[str]:
    """Every id delivered by reads at `read_times`, starting from a cursor at SINCE, in delivery order."""
    stream = AuditStream(SINCE)
    delivered: list[str] = []
    for now in read_times:
        read = advance(stream, _listing(log, stream, now))
        delivered += [entry.id for entry in read.entries if entry.id is not None]
        stream = read.stream
        # the cursor stays within what the state parameter can hold
        assert len(stream.seen) <= AUDIT_SEEN_HARD_MAX and 0 <= stream.window <= LOOKBACK_SECONDS
    return delivered


events = st.lists(
    st.tuples(st.integers(0, 3600), st.integers(0, LOOKBACK_SECONDS)),  # (seconds after SINCE, listed how late)
    max_size=AUDIT_SEEN_MAX // 2,
    unique_by=lambda item: item,
)
read_gaps = st.lists(st.integers(1, 900), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(events=events, gaps=read_gaps)
def test_every_event_is_delivered_exactly_once_even_when_listed_late(
    events: list[tuple[int, int]], gaps: list[int]
) -> None:
    # GIVEN events OpenAI lists up to LOOKBACK_SECONDS after they took effect, read on any schedule
    log = [Listed(f"audit_log-{n}", SINCE + offset, SINCE + offset + lag) for n, (offset, lag) in enumerate(events)]
    times = [SINCE + sum(gaps[: i + 1]) for i in range(len(gaps))]
    times.append(max([times[-1], *(event.visible_from for event in log)]) + 1)  # a last read once all are listed
    # WHEN the monitor reads at each time
    delivered = _reads(log, times)
    # THEN each event was delivered, and only once
    assert sorted(delivered) == sorted(event.id for event in log)


@settings(max_examples=100, deadline=None)
@given(burst=st.integers(AUDIT_SEEN_MAX + 1, 3 * AUDIT_SEEN_HARD_MAX), later=st.integers(0, 5))
def test_a_burst_too_big_to_remember_is_never_delivered_twice(burst: int, later: int) -> None:
    # GIVEN more events in one second than the cursor can remember, and a few more afterwards
    log = [Listed(f"audit_log-b{n}", SINCE + 10, SINCE + 10) for n in range(burst)]
    log += [Listed(f"audit_log-l{n}", SINCE + 20 + n, SINCE + 20 + n) for n in range(later)]
    # WHEN the monitor reads during and after the burst, again and again
    delivered = _reads(log, [SINCE + 15, SINCE + 30, SINCE + 60, SINCE + 400])
    # THEN nothing was delivered twice, and the burst and what followed were delivered
    assert len(delivered) == len(set(delivered)) == burst + later


def test_events_before_the_first_read_are_not_delivered() -> None:
    # GIVEN events before and at the moment the cursor starts
    log = [Listed("audit_log-old", SINCE - 1, SINCE - 1), Listed("audit_log-now", SINCE, SINCE)]
    # WHEN read THEN only the one at or after the start is delivered
    assert _reads(log, [SINCE + 60]) == ["audit_log-now"]


def test_a_malformed_entry_with_an_id_is_delivered_once() -> None:
    # GIVEN an entry OpenAI lists broken, among good ones
    broken = MalformedAuditEvent(0, "audit_log-broken", "field effective_at is missing or not Unix seconds")
    good = Listed("audit_log-good", SINCE + 5, SINCE + 5)
    first = advance(AuditStream(SINCE), [broken, good.entry()])
    # WHEN the same listing comes back on the next read
    second = advance(first.stream, [broken, good.entry()])
    # THEN neither is delivered again
    assert [entry.id for entry in first.entries] == ["audit_log-broken", "audit_log-good"]
    assert second.entries == ()


def test_the_cursor_round_trips_through_the_monitor_state() -> None:
    # GIVEN a cursor after a read
    read = advance(AuditStream(SINCE), [Listed(f"audit_log-{n}", SINCE + n, SINCE + n).entry() for n in range(5)])
    state = MonitorState(watermark=SINCE - SINCE % 60)
    state.audit = AuditState(keys=read.stream, admin=AuditStream(SINCE + 1), listed_at=SINCE, generation="abcdef123456")
    # WHEN it is stored and read back THEN it is the same, and holds no entry id (digests only)
    text = state.to_json()
    assert MonitorState.from_json(text, "/keyrot/dev/monitor-state") == state
    assert "audit_log-" not in text
