"""The OpenAI admin API calls keyrot needs: service accounts, project keys, usage and costs.

Every call authenticates with the admin key. Paths and shapes follow OpenAI's OpenAPI spec; see
docs/architecture.md for why every rotation creates a new service account.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from keyrot.openai_admin.errors import MalformedResponseError, NotFoundError
from keyrot.openai_admin.models import MintedServiceAccount, ProjectApiKey, ServiceAccount
from keyrot.openai_admin.transport import OpenAITransport

_PAGE_SIZE = 100
# A cursor that does not advance would loop forever; no real inventory or usage window needs this many pages.
_MAX_PAGES = 10_000

USAGE_KINDS = (
    "completions",
    "embeddings",
    "moderations",
    "images",
    "audio_speeches",
    "audio_transcriptions",
    "vector_stores",
    "code_interpreter_sessions",
    "file_search_calls",
    "web_search_calls",
)


class OpenAIAdminClient:
    """Admin-key operations on one organization. Holds the admin key; never exposes it."""

    def __init__(self, admin_key: str, transport: OpenAITransport) -> None:
        self._admin_key = admin_key
        self._transport = transport

    def __repr__(self) -> str:
        return f"OpenAIAdminClient(base_url={self._transport.base_url!r})"

    # --- service accounts -------------------------------------------------------------------------

    def create_service_account(
        self, project_id: str, name: str, *, expires_in_seconds: int | None = None
    ) -> MintedServiceAccount:
        """Create a service account and its one API key. The key value is in the result, and nowhere else."""
        body: dict[str, Any] = {"name": name}
        if expires_in_seconds:
            body["expires_in_seconds"] = expires_in_seconds
        response = self._transport.request(
            "POST",
            f"/organization/projects/{_seg(project_id)}/service_accounts",
            bearer=self._admin_key,
            operation="create service account",
            json_body=body,
            idempotent=False,
        )
        return MintedServiceAccount.from_api(response.body)

    def iter_service_accounts(self, project_id: str) -> Iterator[ServiceAccount]:
        path = f"/organization/projects/{_seg(project_id)}/service_accounts"
        for item in self._iter_list(path, "list service accounts", {}):
            yield ServiceAccount.from_api(item)

    def delete_service_account(self, project_id: str, service_account_id: str) -> bool:
        """Delete a service account (and so its keys). False when it was already gone."""
        try:
            self._transport.request(
                "DELETE",
                f"/organization/projects/{_seg(project_id)}/service_accounts/{_seg(service_account_id)}",
                bearer=self._admin_key,
                operation="delete service account",
            )
        except NotFoundError:
            return False
        return True

    # --- project API keys -------------------------------------------------------------------------

    def iter_project_api_keys(self, project_id: str, *, owner_project_access: str = "any") -> Iterator[ProjectApiKey]:
        """Every key of the project. `any` includes keys whose owner lost access, which an inventory must see."""
        path = f"/organization/projects/{_seg(project_id)}/api_keys"
        params = {"owner_project_access": owner_project_access}
        for item in self._iter_list(path, "list project API keys", params):
            yield ProjectApiKey.from_api(item)

    def get_project_api_key(self, project_id: str, key_id: str) -> ProjectApiKey:
        response = self._transport.request(
            "GET",
            f"/organization/projects/{_seg(project_id)}/api_keys/{_seg(key_id)}",
            bearer=self._admin_key,
            operation="retrieve project API key",
        )
        return ProjectApiKey.from_api(response.body)

    def check_admin_key(self) -> None:
        """Raise unless the admin key authenticates against the admin API (GET admin_api_keys?limit=1)."""
        self._transport.request(
            "GET",
            "/organization/admin_api_keys",
            bearer=self._admin_key,
            operation="check admin key",
            params={"limit": 1},
        )

    def check_usage_access(self, now: int) -> None:
        """Raise unless the admin key may read usage (the monitor's need): one usage page of the last day."""
        next(iter(self.iter_usage_pages("completions", {"start_time": now - 86400, "limit": 1})))

    # --- usage and costs --------------------------------------------------------------------------

    def iter_usage_pages(self, kind: str, params: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        """Pages of GET /organization/usage/{kind}, following next_page until it is null."""
        if kind not in USAGE_KINDS:
            raise ValueError(f"unknown usage kind {kind!r}; expected one of {', '.join(USAGE_KINDS)}")
        yield from self._iter_pages(f"/organization/usage/{kind}", f"read {kind} usage", params)

    def iter_cost_pages(self, params: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        """Pages of GET /organization/costs, following next_page until it is null."""
        yield from self._iter_pages("/organization/costs", "read costs", params)

    # --- paging -----------------------------------------------------------------------------------

    def _iter_list(self, path: str, operation: str, params: Mapping[str, Any]) -> Iterator[Any]:
        after: str | None = None
        for _ in range(_MAX_PAGES):
            query = {**params, "limit": _PAGE_SIZE, **({"after": after} if after else {})}
            body = self._transport.request("GET", path, bearer=self._admin_key, operation=operation, params=query).body
            data = body.get("data") if isinstance(body, Mapping) else None
            if not isinstance(data, list) or not isinstance(body.get("has_more"), bool):
                raise MalformedResponseError(f"OpenAI {operation}: response is not a list envelope")
            yield from data
            if not body["has_more"]:
                return
            next_after = body.get("last_id")
            if not isinstance(next_after, str) or next_after == after:
                raise MalformedResponseError(f"OpenAI {operation}: has_more is true but last_id does not advance")
            after = next_after
        raise MalformedResponseError(f"OpenAI {operation}: more than {_MAX_PAGES} pages")

    def _iter_pages(self, path: str, operation: str, params: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        page: str | None = None
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            query = {**params, **({"page": page} if page else {})}
            body = self._transport.request("GET", path, bearer=self._admin_key, operation=operation, params=query).body
            if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
                raise MalformedResponseError(f"OpenAI {operation}: response is not a page envelope")
            yield body
            next_page = body.get("next_page")
            if next_page is None:
                return
            if not isinstance(next_page, str) or next_page in seen:
                raise MalformedResponseError(f"OpenAI {operation}: next_page does not advance")
            seen.add(next_page)
            page = next_page
        raise MalformedResponseError(f"OpenAI {operation}: more than {_MAX_PAGES} pages")


def _seg(value: str) -> str:
    """One URL path segment; ids are opaque, so quote them."""
    return quote(value, safe="")
