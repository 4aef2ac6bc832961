"""The stand-in's HTTP vocabulary: replies, OpenAI's error envelope, query helpers and cursor-list paging."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    drop: bool = False


class ApiError(Exception):
    """An OpenAI error answer: raise it from a handler and the server sends its reply."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.reply = Reply(status, error_body(message, error_type, code, param), headers or {})


def error_body(message: str, error_type: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def missing_scope(scope: str) -> ApiError:
    """A valid key without the scope a call needs: 401 with code null (fact sheet section 10, observed), and the
    wording OpenAI uses in the wild ("...Missing scopes: model.request. Check that you have the correct role...")."""
    return ApiError(
        401,
        f"You have insufficient permissions for this operation. Missing scopes: {scope}. Check that you have the "
        "correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using "
        "a restricted API key, that it has the necessary scopes.",
    )


def masked(bearer: str) -> str:
    # OpenAI echoes a masked key in invalid_api_key messages; keyrot must scrub even this.
    return f"{bearer[:3]}{'*' * 8}{bearer[-4:]}" if len(bearer) > 8 else "***"


def bearer_of(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() if value.lower().startswith("bearer ") else None


def json_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise ApiError(400, "We could not parse the JSON body of your request.") from None


def many(query: Mapping[str, list[str]], name: str) -> list[str]:
    """Both encodings official clients use: repeated `x=` and bracketed `x[]=`."""
    return [*query.get(name, []), *query.get(f"{name}[]", [])]


def one(query: Mapping[str, list[str]], name: str) -> str | None:
    values = many(query, name)
    return values[-1] if values else None


def int_param(query: Mapping[str, list[str]], name: str) -> int | None:
    raw = one(query, name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid value for '{name}': expected an integer.", param=name) from None


def bool_param(query: Mapping[str, list[str]], name: str) -> bool | None:
    raw = one(query, name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise ApiError(400, f"Invalid value for '{name}': expected true or false.", param=name)
    return raw == "true"


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def strict_int(body: Mapping[str, Any], name: str, *, minimum: int | None = None) -> int:
    """An integer body field (booleans and floats refused), at least `minimum`."""
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, f"Invalid type for '{name}': expected an integer.", param=name)
    if minimum is not None and value < minimum:
        raise ApiError(400, f"Invalid value for '{name}': must be at least {minimum}.", param=name)
    return value


def string_list(body: Mapping[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError(400, f"Invalid type for '{name}': expected an array of strings.", param=name)
    return value


def cursor_page(
    items: Sequence[Mapping[str, Any]],
    query: Mapping[str, list[str]],
    *,
    hidden: set[str] | frozenset[str] = frozenset(),
    default_limit: int = 20,
    min_limit: int = 1,
    max_limit: int = 100,
) -> dict[str, Any]:
    """One page of `items` (in list order) without the `hidden` ones, paged by `after` or `before` (an item id).

    `after` gives the items that follow the cursor; `before` the `limit` items just ahead of it, in list order, with
    `has_more` saying whether still earlier ones exist. A cursor may name a hidden item, such as one deleted since the
    previous page: the listing goes on from its place instead of failing mid-iteration. An id the list never held
    is a 400.
    """
    raw_limit = one(query, "limit")
    try:
        limit = default_limit if raw_limit in (None, "") else int(raw_limit)  # type: ignore[arg-type]
    except ValueError:
        raise ApiError(400, "Invalid value for 'limit': expected an integer.", param="limit") from None
    if not min_limit <= limit <= max_limit:
        raise ApiError(400, f"Invalid value for 'limit': must be between {min_limit} and {max_limit}.", param="limit")
    after, before = one(query, "after"), one(query, "before")
    if after and before:
        raise ApiError(400, "Only one of 'after' and 'before' may be given.", param="before")
    ids = [str(item["id"]) for item in items]
    if after or before:
        cursor = after or before
        if cursor not in ids:
            name = "after" if after else "before"
            raise ApiError(400, f"Invalid value for '{name}': no object with id {cursor}.", param=name)
    if before:
        ahead = [item for item in items[: ids.index(before)] if item["id"] not in hidden]
        page = ahead[max(0, len(ahead) - limit) :] if limit else []
        has_more = len(ahead) > len(page)
    else:
        start = ids.index(after) + 1 if after else 0
        remaining = [item for item in items[start:] if item["id"] not in hidden]
        page = remaining[:limit]
        has_more = len(remaining) > limit
    return {
        "object": "list",
        "data": list(page),
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": has_more,
    }
