"""Usage and Costs API aggregation: UTC-aligned buckets, group_by, filters and page tokens, as OpenAI documents."""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lab.openai_standin.state import CostRecord, UsageRecord

BUCKET_SECONDS = {"1m": 60, "1h": 3600, "1d": 86400}
# (default limit, maximum limit) per bucket width; `limit` counts buckets.
USAGE_LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}
COST_LIMITS = (7, 180)

# Metric fields each usage kind reports (required ones first), and the dimensions it can be grouped by.
USAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "completions": (
        "input_tokens",
        "output_tokens",
        "num_model_requests",
        "input_cached_tokens",
        "input_audio_tokens",
        "output_audio_tokens",
    ),
    "embeddings": ("input_tokens", "num_model_requests"),
    "moderations": ("input_tokens", "num_model_requests"),
    "images": ("images", "num_model_requests"),
    "audio_speeches": ("characters", "num_model_requests"),
    "audio_transcriptions": ("seconds", "num_model_requests"),
    "vector_stores": ("usage_bytes",),
    "code_interpreter_sessions": ("num_sessions",),
    "file_search_calls": ("num_requests",),
    "web_search_calls": ("num_requests", "num_model_requests"),
}
# The `object` of each kind's result, as the spec names it (two differ from the URL segment).
USAGE_RESULT_OBJECTS: dict[str, str] = {kind: f"organization.usage.{kind}.result" for kind in USAGE_FIELDS} | {
    "file_search_calls": "organization.usage.file_searches.result",
    "web_search_calls": "organization.usage.web_searches.result",
}
_COMMON_DIMENSIONS = ("project_id", "user_id", "api_key_id", "model")
# The group_by values each kind accepts (the spec's enum) and so the dimension fields its results carry.
USAGE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "completions": (*_COMMON_DIMENSIONS, "batch", "service_tier"),
    "images": (*_COMMON_DIMENSIONS, "size", "source"),
    "vector_stores": ("project_id",),
    "code_interpreter_sessions": ("project_id",),
    "file_search_calls": ("project_id", "user_id", "api_key_id", "vector_store_id"),
    "web_search_calls": (*_COMMON_DIMENSIONS, "context_level"),
}
COST_DIMENSIONS = ("project_id", "line_item", "api_key_id")


class QueryError(ValueError):
    """A bad query parameter; the message names it. Answered as HTTP 400 invalid_request_error."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    width: int
    limit: int
    page_start: int


def parse_window(
    query: Mapping[str, list[str]], now: int, *, widths: Sequence[str], limits: Mapping[str, tuple[int, int]]
) -> Window:
    start = _int_param(query, "start_time", required=True)
    end = _int_param(query, "end_time", required=False)
    width_name = _one(query, "bucket_width") or "1d"
    if width_name not in widths:
        raise QueryError(f"Invalid value for 'bucket_width': expected one of {', '.join(widths)}", "bucket_width")
    default_limit, max_limit = limits[width_name]
    limit = _int_param(query, "limit", required=False)
    limit = default_limit if limit is None else limit
    if not 1 <= limit <= max_limit:
        raise QueryError(f"Invalid value for 'limit': must be between 1 and {max_limit}", "limit")
    end = now if end is None else end
    if start < 0 or end <= start:
        raise QueryError("'end_time' must be after 'start_time'", "end_time")
    page_start = start
    token = _one(query, "page")
    if token:
        page_start = decode_page(token, start, end)
    return Window(start, end, BUCKET_SECONDS[width_name], limit, page_start)


def bucket_bounds(window: Window) -> tuple[list[tuple[int, int]], int | None]:
    """The page's buckets and the start of the next page (None at the end). The first bucket starts at start_time;
    later ones align to UTC multiples of the width."""
    bounds: list[tuple[int, int]] = []
    cursor = window.page_start
    while cursor < window.end and len(bounds) < window.limit:
        boundary = (cursor // window.width + 1) * window.width
        bounds.append((cursor, min(boundary, window.end)))
        cursor = boundary
    return bounds, (cursor if cursor < window.end else None)


def usage_page(kind: str, records: Iterable[UsageRecord], query: Mapping[str, list[str]], now: float) -> dict[str, Any]:
    window = parse_window(query, int(now), widths=tuple(BUCKET_SECONDS), limits=USAGE_LIMITS)
    dimensions = USAGE_DIMENSIONS.get(kind, _COMMON_DIMENSIONS)
    group_by = _group_by(query, dimensions)
    filters = _filters(
        query, {"project_ids": "project_id", "api_key_ids": "api_key_id", "models": "model", "user_ids": "user_id"}
    )
    batch = _one(query, "batch")
    if batch is not None:
        if kind != "completions" or batch not in ("true", "false"):
            raise QueryError("Invalid value for 'batch': expected true or false", "batch")
        filters["batch"] = {batch == "true"}
    visible = [r for r in records if r.kind == kind and r.visible_at <= now and _passes(_usage_dims(r), filters)]
    bounds, next_start = bucket_bounds(window)
    data = []
    for start, end in bounds:
        groups: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for record in visible:
            if start <= record.at < end:
                dims = _usage_dims(record)
                totals = groups[tuple(dims.get(name) for name in group_by)]
                for name, value in record.metrics.items():
                    totals[name] += value
        results = []
        for key, totals in groups.items():
            result: dict[str, Any] = {"object": USAGE_RESULT_OBJECTS[kind]}
            result.update({name: totals.get(name, 0) for name in USAGE_FIELDS[kind]})
            grouped = dict(zip(group_by, key, strict=True))
            result.update({name: grouped.get(name) for name in dimensions})
            results.append(result)
        data.append({"object": "bucket", "start_time": start, "end_time": end, "results": results})
    return _page(data, next_start, window)


def costs_page(records: Iterable[CostRecord], query: Mapping[str, list[str]], now: float) -> dict[str, Any]:
    window = parse_window(query, int(now), widths=("1d",), limits={"1d": COST_LIMITS})
    group_by = _group_by(query, COST_DIMENSIONS)
    filters = _filters(query, {"project_ids": "project_id", "api_key_ids": "api_key_id"})
    visible = [r for r in records if r.visible_at <= now and _passes(_cost_dims(r), filters)]
    bounds, next_start = bucket_bounds(window)
    data = []
    for start, end in bounds:
        groups: dict[tuple[Any, ...], float] = defaultdict(float)
        for record in visible:
            if start <= record.at < end:
                dims = _cost_dims(record)
                groups[tuple(dims.get(name) for name in group_by)] += record.usd
        results = []
        for key, usd in groups.items():
            grouped = dict(zip(group_by, key, strict=True))
            results.append(
                {
                    "object": "organization.costs.result",
                    "amount": {"value": round(usd, 10), "currency": "usd"},
                    "line_item": grouped.get("line_item"),
                    "project_id": grouped.get("project_id"),
                    "api_key_id": grouped.get("api_key_id"),
                    "quantity": None,
                    "quantity_unit": None,
                }
            )
        data.append({"object": "bucket", "start_time": start, "end_time": end, "results": results})
    return _page(data, next_start, window)


def encode_page(start: int) -> str:
    return "page_" + base64.urlsafe_b64encode(str(start).encode()).decode().rstrip("=")


def decode_page(token: str, start: int, end: int) -> int:
    try:
        raw = token.removeprefix("page_")
        value = int(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise QueryError("Invalid value for 'page'", "page") from None
    if not start <= value < end:
        raise QueryError("Invalid value for 'page': it belongs to another query", "page")
    return value


def _page(data: list[dict[str, Any]], next_start: int | None, window: Window) -> dict[str, Any]:
    next_page = encode_page(next_start) if next_start is not None else None
    return {"object": "page", "data": data, "has_more": next_page is not None, "next_page": next_page}


def _usage_dims(record: UsageRecord) -> dict[str, Any]:
    return {
        "project_id": record.project_id,
        "api_key_id": record.api_key_id,
        "user_id": record.user_id,
        "model": record.model,
        "batch": record.batch,
        "service_tier": None,
        "size": None,
        "source": None,
        "vector_store_id": None,
        "context_level": None,
    }


def _cost_dims(record: CostRecord) -> dict[str, Any]:
    return {"project_id": record.project_id, "api_key_id": record.api_key_id, "line_item": record.line_item}


def _group_by(query: Mapping[str, list[str]], allowed: Sequence[str]) -> tuple[str, ...]:
    values = _many(query, "group_by")
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise QueryError(f"Invalid value for 'group_by': {unknown[0]!r}", "group_by")
    return tuple(dict.fromkeys(values))


def _filters(query: Mapping[str, list[str]], names: Mapping[str, str]) -> dict[str, set[Any]]:
    return {dimension: set(_many(query, param)) for param, dimension in names.items() if _many(query, param)}


def _passes(dims: Mapping[str, Any], filters: Mapping[str, set[Any]]) -> bool:
    return all(dims.get(name) in allowed for name, allowed in filters.items())


def _many(query: Mapping[str, list[str]], name: str) -> list[str]:
    """Both encodings official clients use: repeated `x=` and bracketed `x[]=`."""
    return [*query.get(name, []), *query.get(f"{name}[]", [])]


def _one(query: Mapping[str, list[str]], name: str) -> str | None:
    values = _many(query, name)
    return values[-1] if values else None


def _int_param(query: Mapping[str, list[str]], name: str, *, required: bool) -> int | None:
    raw = _one(query, name)
    if raw is None or raw == "":
        if required:
            raise QueryError(f"Missing required parameter: '{name}'", name)
        return None
    try:
        return int(raw)
    except ValueError:
        raise QueryError(f"Invalid value for '{name}': expected an integer", name) from None
