"""Read the Usage and Costs APIs for one project, grouped by api_key_id, and check what comes back.

The number of OpenAI calls depends on the usage kinds and pages, never on the number of keys. Every bucket of
the requested window must be present exactly once, in the window (usage and costs alike); anything else is an
error and nothing is published. An error in one bucket's results names that bucket (`MalformedUsageError.bucket`),
so a bucket that keeps failing can be set aside and the rest published (monitor/run.py).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keyrot import metric_names as m
from keyrot.errors import KeyrotError
from keyrot.openai_admin import OpenAIAdminClient

BUCKET_SECONDS = 60
_MAX_BUCKETS_PER_PAGE = 1440  # the Usage API's maximum `limit` for 1-minute buckets
# No minute holds more than this of anything; a larger count is garbage, and past 2**53 a float (and so CloudWatch,
# or past ~1e308 even the conversion) can no longer carry it.
_MAX_COUNT = 2**53

# Per usage kind: which result field feeds which metric. Every listed field is required by OpenAI's spec.
KIND_FIELDS: Mapping[str, Mapping[str, str]] = {
    "completions": {"num_model_requests": m.REQUESTS, "input_tokens": m.INPUT_TOKENS, "output_tokens": m.OUTPUT_TOKENS},
    "embeddings": {"num_model_requests": m.REQUESTS, "input_tokens": m.INPUT_TOKENS},
    "moderations": {"num_model_requests": m.REQUESTS, "input_tokens": m.INPUT_TOKENS},
    "images": {"num_model_requests": m.REQUESTS, "images": m.IMAGES},
    "audio_speeches": {"num_model_requests": m.REQUESTS, "characters": m.AUDIO_CHARACTERS},
    "audio_transcriptions": {"num_model_requests": m.REQUESTS, "seconds": m.AUDIO_SECONDS},
}


class MalformedUsageError(KeyrotError):
    """The Usage or Costs API answered with something keyrot cannot trust; nothing is published.

    `kind` and `bucket` name the usage kind and bucket start when the fault lies in one bucket's results.
    """

    def __init__(self, message: str, *, kind: str | None = None, bucket: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.bucket = kind, bucket


# (bucket start, api key id or None) -> metric name -> value
UsageTotals = dict[tuple[int, str | None], Counter[str]]


@dataclass(frozen=True)
class CostsToday:
    """Spend so far in the current UTC day, per key id (None: not attributable to a key) and in total."""

    day_start: int
    per_key: Mapping[str | None, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.per_key.values())


def fetch_usage(
    admin: OpenAIAdminClient,
    kinds: Iterable[str],
    project_id: str,
    start: int,
    end: int,
    *,
    skip: Collection[tuple[str, int]] = (),
) -> UsageTotals:
    """Usage in [start, end) (minute-aligned) for `kinds`, summed per minute bucket and key id.

    Buckets listed in `skip` as (kind, bucket start) must still be present, but their results are not read.
    """
    if start % BUCKET_SECONDS or end % BUCKET_SECONDS or end <= start:
        raise ValueError(f"usage window must be minute-aligned and non-empty, got [{start}, {end})")
    totals: UsageTotals = defaultdict(Counter)
    expected = set(range(start, end, BUCKET_SECONDS))
    for kind in kinds:
        fields = KIND_FIELDS[kind]
        params = {
            "start_time": start,
            "end_time": end,
            "bucket_width": "1m",
            "group_by": ["api_key_id"],
            "project_ids": [project_id],
            "limit": min(_MAX_BUCKETS_PER_PAGE, len(expected)),
        }
        seen: set[int] = set()
        for page in admin.iter_usage_pages(kind, params):
            for bucket in page["data"]:
                bucket_start = _bucket_start(bucket, kind, start, end)
                if bucket_start in seen:
                    raise MalformedUsageError(f"{kind} usage returned bucket {_iso(bucket_start)} twice")
                seen.add(bucket_start)
                if (kind, bucket_start) in skip:
                    continue
                try:
                    for result in _results(bucket, kind):
                        key_id = _key_id(result, kind)
                        counter = totals[(bucket_start, key_id)]
                        for field_name, metric in fields.items():
                            counter[metric] += _count(result, field_name, kind)
                except MalformedUsageError as exc:
                    raise MalformedUsageError(
                        f"{exc} in bucket {_iso(bucket_start)}", kind=kind, bucket=bucket_start
                    ) from None
        missing = expected - seen
        if missing:
            raise MalformedUsageError(
                f"{kind} usage is missing {len(missing)} bucket(s) from {_iso(min(missing))}; nothing published"
            )
    return totals


def fetch_costs_today(admin: OpenAIAdminClient, project_id: str, now: datetime) -> CostsToday:
    """Today's (UTC) spend for the project, grouped by api_key_id.

    The answer must hold today's bucket exactly once and no other (a bucket repeated across pages would double the
    spend, yesterday's would be added to today's), every amount in USD.
    """
    day_start = int(now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    params = {
        "start_time": day_start,
        "end_time": day_start + 86400,
        "bucket_width": "1d",
        "group_by": ["api_key_id"],
        "project_ids": [project_id],
        "limit": 1,
    }
    per_key: dict[str | None, float] = defaultdict(float)
    seen = False
    for page in admin.iter_cost_pages(params):
        for bucket in page["data"]:
            bucket_start = _bucket_start(bucket, "costs", day_start, day_start + 86400)
            if bucket_start != day_start:
                raise MalformedUsageError(f"costs returned a bucket for {_iso(bucket_start)}, not today's")
            if seen:
                raise MalformedUsageError(f"costs returned today's bucket ({_iso(day_start)}) twice")
            seen = True
            for result in _results(bucket, "costs"):
                amount = result.get("amount")
                if not isinstance(amount, Mapping) or not _is_number(amount.get("value")):
                    raise MalformedUsageError("costs result has no numeric amount.value")
                currency = amount.get("currency")
                if not isinstance(currency, str) or currency.lower() != "usd":
                    raise MalformedUsageError(f"costs result is in {currency!r}; keyrot reports USD only")
                per_key[_key_id(result, "costs")] += float(amount["value"])
    if not seen:
        raise MalformedUsageError(f"costs returned no bucket for today ({_iso(day_start)})")
    return CostsToday(day_start, dict(per_key))


def _bucket_start(bucket: Any, kind: str, start: int, end: int) -> int:
    if not isinstance(bucket, Mapping):
        raise MalformedUsageError(f"{kind} usage bucket is not an object")
    value = bucket.get("start_time")
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedUsageError(f"{kind} usage bucket has no integer start_time")
    if value % BUCKET_SECONDS or not start <= value < end:
        raise MalformedUsageError(f"{kind} bucket {value} is outside the requested window or not aligned")
    return value


def _results(bucket: Any, kind: str) -> list[Mapping[str, Any]]:
    results = bucket.get("results") if isinstance(bucket, Mapping) else None
    if not isinstance(results, list) or not all(isinstance(result, Mapping) for result in results):
        raise MalformedUsageError(f"{kind} bucket has no list of result objects")
    return results


def _key_id(result: Mapping[str, Any], kind: str) -> str | None:
    value = result.get("api_key_id")
    if value is not None and (not isinstance(value, str) or not value):
        raise MalformedUsageError(f"{kind} result api_key_id must be a string or null")
    return value


def _count(result: Mapping[str, Any], name: str, kind: str) -> int:
    value = result.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedUsageError(f"{kind} result field {name} is missing or not a non-negative integer")
    if value > _MAX_COUNT:
        raise MalformedUsageError(f"{kind} result field {name} is implausibly large ({len(str(value))} digits)")
    return value


def _is_number(value: Any) -> bool:
    """A finite int or float that CloudWatch can take (not NaN, not infinite, not an int too big for a float)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _iso(moment: int) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")
