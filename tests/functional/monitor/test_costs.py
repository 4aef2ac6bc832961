"""Cost buckets get the checks usage buckets get: today's bucket exactly once, nothing outside today, USD only.
Otherwise no spend is published that run (never a doubled or borrowed figure)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot import metric_names as m
from keyrot.monitor.run import MonitorRun
from keyrot.monitor.usage import MalformedUsageError, fetch_costs_today
from keyrot.openai_admin import OpenAIAdminClient
from lab.monitor_scenario import MonitorWorld

from .conftest import rotated

NOW = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
TODAY = int(NOW.replace(hour=0, minute=0).timestamp())
DAY = 86400


class PagedCosts:
    """An admin client whose Costs API answers with `pages` (lists of buckets)."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages

    def iter_cost_pages(self, params: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        for buckets in self.pages:
            yield {"object": "page", "data": buckets}


def _bucket(start: int, *amounts: float, currency: str = "usd") -> dict[str, Any]:
    results = [{"amount": {"value": amount, "currency": currency}, "api_key_id": None} for amount in amounts]
    return {"object": "bucket", "start_time": start, "end_time": start + DAY, "results": results}


buckets = st.builds(
    _bucket,
    st.sampled_from([TODAY, TODAY - DAY, TODAY + DAY, TODAY + 3600]),
    st.floats(0, 1000, allow_nan=False),
    currency=st.sampled_from(["usd", "USD", "usd", "eur"]),
)


@settings(max_examples=200, deadline=None)
@given(pages=st.lists(st.lists(buckets, max_size=3), min_size=1, max_size=3))
def test_todays_spend_is_todays_bucket_exactly_once_or_nothing(pages: list[list[dict[str, Any]]]) -> None:
    # GIVEN any Costs answer over pages: today's bucket, yesterday's, tomorrow's, a misaligned one, repeats, currencies
    served = [bucket for page in pages for bucket in page]
    clean = [bucket["start_time"] for bucket in served] == [TODAY] and all(
        r["amount"]["currency"].lower() == "usd" for b in served for r in b["results"]
    )
    # WHEN today's spend is read
    try:
        costs = fetch_costs_today(PagedCosts(pages), "proj_x", NOW)  # type: ignore[arg-type]
    except MalformedUsageError:
        # THEN an answer that is not exactly today's bucket, in USD, is refused
        assert not clean
        return
    # THEN an accepted answer is exactly today's bucket, and the spend is its amounts
    assert clean
    assert costs.total == pytest.approx(sum(r["amount"]["value"] for r in served[0]["results"]))


def test_a_cost_bucket_repeated_across_pages_is_refused_not_doubled() -> None:
    # GIVEN today's bucket served on two pages
    pages = [[_bucket(TODAY, 4.0)], [_bucket(TODAY, 4.0)]]
    # WHEN today's spend is read THEN it is refused with the reason
    with pytest.raises(MalformedUsageError, match="twice"):
        fetch_costs_today(PagedCosts(pages), "proj_x", NOW)  # type: ignore[arg-type]


def test_yesterdays_cost_bucket_is_not_added_to_today() -> None:
    # GIVEN yesterday's bucket next to today's
    pages = [[_bucket(TODAY - DAY, 9.0), _bucket(TODAY, 1.0)]]
    # WHEN today's spend is read THEN it is refused, naming the day it does not want
    with pytest.raises(MalformedUsageError, match="outside the requested window"):
        fetch_costs_today(PagedCosts(pages), "proj_x", NOW)  # type: ignore[arg-type]


class RepeatedCostPages(OpenAIAdminClient):
    """The real admin client against the stand-in, with each Costs page served twice."""

    def __init__(self, inner: OpenAIAdminClient) -> None:
        self.__dict__.update(inner.__dict__)

    def iter_cost_pages(self, params: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        for page in super().iter_cost_pages(params):
            yield page
            yield page


def test_a_repeated_costs_page_publishes_no_spend_instead_of_double(monitor: MonitorWorld) -> None:
    # GIVEN 2 USD spent today, and a Costs API that serves its page twice
    arn = rotated(monitor, "chat-backend")
    monitor.rotation.openai.state.record_cost(monitor.rotation.current(arn).key_id, 2.0)
    deps = monitor.dependencies()
    deps.admin = RepeatedCostPages(deps.admin)
    # WHEN the monitor runs
    report = MonitorRun(deps).execute()
    # THEN no SpendTodayUSD went out (4 would be wrong), and the costs failure is reported
    assert monitor.maxima(m.SPEND_TODAY_USD, m.environment_dimensions("dev")) == []
    assert "twice" in report.failed_parts["costs"]
