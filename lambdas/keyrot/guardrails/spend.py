"""How close the project is to its hard spend limit: month-to-date spend (Costs API) beside the limit and alerts."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from keyrot.guardrails import constants as c
from keyrot.openai_admin.errors import MalformedResponseError
from keyrot.openai_admin.guardrails import SpendAlert, SpendLimit

_DAY = 86400


class SpendReader(Protocol):
    def get_spend_limit(self, project_id: str) -> SpendLimit | None: ...
    def iter_spend_alerts(self, project_id: str) -> Iterator[SpendAlert]: ...
    def iter_cost_pages(self, params: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]: ...


@dataclass(frozen=True)
class SpendStanding:
    """The project's spend this UTC month against OpenAI's hard limit and alerts (cents; None: no hard limit)."""

    month_to_date_cents: int
    limit_cents: int | None
    enforcement: str | None
    alert_cents: tuple[int, ...]

    @property
    def used_fraction(self) -> float | None:
        return None if not self.limit_cents else self.month_to_date_cents / self.limit_cents

    def describe(self) -> str:
        spent = c.usd(self.month_to_date_cents)
        alerts = ", ".join(c.usd(cents) for cents in self.alert_cents) or "none"
        if self.limit_cents is None:
            return f"OpenAI spend this month {spent}; no hard limit; spend alerts at {alerts}"
        share = f"{100 * (self.used_fraction or 0):.0f}%"
        return (
            f"OpenAI spend this month {spent} of the hard limit {c.usd(self.limit_cents)} ({share}, "
            f"{self.enforcement}); spend alerts at {alerts}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "month_to_date_usd": self.month_to_date_cents / 100,
            "hard_limit_usd": None if self.limit_cents is None else self.limit_cents / 100,
            "hard_limit_enforcement": self.enforcement,
            "used_fraction": self.used_fraction,
            "spend_alerts_usd": [cents / 100 for cents in self.alert_cents],
        }


@dataclass(frozen=True)
class MonthToDate:
    """The project's spend this UTC month against the declared hard limit (cents), as the guardrails check saw it."""

    month: str  # "2026-12"
    spent_cents: int
    limit_cents: int

    @property
    def reached(self) -> bool:
        return self.spent_cents >= self.limit_cents

    @property
    def occurrence(self) -> str:
        """One per month and limit: a limit raised and reached again in the same month is a new occurrence."""
        return f"{self.month}:{self.limit_cents}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "month_to_date_usd": self.spent_cents / 100,
            "declared_limit_usd": self.limit_cents / 100,
            "reached": self.reached,
        }


def month_to_date(admin: SpendReader, project_id: str, limit_cents: int, now: datetime) -> MonthToDate:
    """Month-to-date spend (one Costs API read, paged) beside the declared hard limit `limit_cents`."""
    return MonthToDate(f"{now.year:04d}-{now.month:02d}", month_to_date_cents(admin, project_id, now), limit_cents)


def spend_standing(admin: SpendReader, project_id: str, now: datetime) -> SpendStanding:
    limit = admin.get_spend_limit(project_id)
    alerts = sorted({alert.threshold_cents for alert in admin.iter_spend_alerts(project_id)})
    return SpendStanding(
        month_to_date_cents(admin, project_id, now),
        None if limit is None else limit.threshold_cents,
        None if limit is None else limit.enforcement_status,
        tuple(alerts),
    )


def month_to_date_cents(admin: SpendReader, project_id: str, now: datetime) -> int:
    """The project's cost since the start of the UTC month, in cents (OpenAI's spend-limit unit). USD only."""
    start = int(datetime(now.year, now.month, 1, tzinfo=UTC).timestamp())
    days = int(now.timestamp() - start) // _DAY + 1
    params = {
        "start_time": start,
        "end_time": start + days * _DAY,
        "bucket_width": "1d",
        "project_ids": [project_id],
        "limit": min(days, 31),
    }
    dollars = 0.0
    for page in admin.iter_cost_pages(params):
        for bucket in page.get("data") or []:
            results = bucket.get("results") if isinstance(bucket, Mapping) else None
            if not isinstance(results, list):
                raise MalformedResponseError("costs bucket has no list of results")
            for result in results:
                dollars += _usd(result)
    return round(dollars * 100)


def _usd(result: Any) -> float:
    amount = result.get("amount") if isinstance(result, Mapping) else None
    value = amount.get("value") if isinstance(amount, Mapping) else None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(float(value)):
        raise MalformedResponseError("costs result has no numeric amount.value")
    currency = amount.get("currency") if isinstance(amount, Mapping) else None
    if not isinstance(currency, str) or currency.lower() != "usd":
        raise MalformedResponseError("costs result is not in USD; the hard limit is in USD")
    return float(value)
