"""The OpenAI admin API calls keyrot needs: admin keys, service accounts and their keys, project keys, usage and
costs; with the audit log (audit_log.py) and a project's guardrails (guardrails.py) mixed in.

Every call authenticates with the admin key. Paths and shapes follow OpenAI's OpenAPI spec; see
docs/architecture.md for why every rotation creates a new service account. Bad arguments raise ValueError naming
the argument before any request is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from keyrot.openai_admin.audit_log import AuditLogCalls
from keyrot.openai_admin.errors import MalformedResponseError, NotFoundError
from keyrot.openai_admin.guardrails import GuardrailCalls
from keyrot.openai_admin.models import (
    AdminApiKey,
    MintedAdminApiKey,
    MintedServiceAccount,
    MintedServiceAccountKey,
    ProjectApiKey,
    ServiceAccount,
)
from keyrot.openai_admin.transport import ApiResponse, OpenAITransport, path_segment

_PAGE_SIZE = 100
# A cursor that does not advance would loop forever; no real inventory or usage window needs this many pages.
_MAX_PAGES = 10_000

# The spec's bounds on an admin key's `expires_in_seconds` (omitted: the key never expires).
ADMIN_KEY_MAX_LIFETIME_SECONDS = 31_536_000
# A scope name as OpenAI spells them (api.model.read, model.request, api.responses.write). The spec lists no scopes;
# which names exist is for the caller to decide (OpenAI refuses unknown ones, or may).
_SCOPE_SHAPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")

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


class OpenAIAdminClient(AuditLogCalls, GuardrailCalls):
    """Admin-key operations on one organization. Holds the admin key; never exposes it."""

    def __init__(self, admin_key: str, transport: OpenAITransport) -> None:
        self._admin_key = admin_key
        self._transport = transport

    def __repr__(self) -> str:
        return f"OpenAIAdminClient(base_url={self._transport.base_url!r})"

    # --- admin API keys ---------------------------------------------------------------------------

    def iter_admin_api_keys(self) -> Iterator[AdminApiKey]:
        """Every live admin key of the organization, oldest first (values are never listed)."""
        for item in self._iter_list("/organization/admin_api_keys", "list admin API keys", {"order": "asc"}):
            yield AdminApiKey.from_api(item)

    def create_admin_api_key(self, name: str, *, expires_in_seconds: int | None = None) -> MintedAdminApiKey:
        """Mint an admin key that expires after `expires_in_seconds` (1 to 31,536,000; None: never).

        Not retried after an ambiguous failure: a twin would be a live admin key nobody holds. List before trying
        again. The value is in the result and nowhere else."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("an admin key needs a non-empty name")
        body: dict[str, Any] = {"name": name}
        if expires_in_seconds is not None:
            _check_lifetime(expires_in_seconds, ADMIN_KEY_MAX_LIFETIME_SECONDS)
            body["expires_in_seconds"] = expires_in_seconds
        response = self._call(
            "POST", "/organization/admin_api_keys", "create admin API key", json_body=body, idempotent=False
        )
        return MintedAdminApiKey.from_api(response.body)

    def get_admin_api_key(self, key_id: str) -> AdminApiKey:
        response = self._call("GET", f"/organization/admin_api_keys/{path_segment(key_id)}", "retrieve admin API key")
        return AdminApiKey.from_api(response.body)

    def delete_admin_api_key(self, key_id: str) -> bool:
        """Delete an admin key (it stops authenticating). False when it was already gone."""
        try:
            self._call("DELETE", f"/organization/admin_api_keys/{path_segment(key_id)}", "delete admin API key")
        except NotFoundError:
            return False
        return True

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

    def create_service_account_without_key(self, project_id: str, name: str) -> ServiceAccount:
        """A service account with no key (role "none"); give it keys with create_service_account_key."""
        body = {"name": name, "create_service_account_only": True}
        response = self._call(
            "POST",
            f"/organization/projects/{_seg(project_id)}/service_accounts",
            "create service account",
            json_body=body,
            idempotent=False,
        )
        return ServiceAccount.from_api(response.body)

    def create_service_account_key(
        self,
        project_id: str,
        service_account_id: str,
        *,
        name: str | None = None,
        scopes: Iterable[str] | None = None,
        expires_in_seconds: int | None = None,
    ) -> MintedServiceAccountKey:
        """A further key on an existing account, limited to `scopes` (None: unrestricted). The value is in the result
        only. Note: the spec gives no way to delete one service-account key; deleting the account revokes them all.

        `expires_in_seconds` is not in the spec's request schema (openai-python 3.57 sends it); pass it only where
        OpenAI honours it."""
        body: dict[str, Any] = {}
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise ValueError("a key name must be a non-empty string")
            body["name"] = name
        granted: tuple[str, ...] | None = None
        if scopes is not None:
            granted = () if isinstance(scopes, str) else tuple(scopes)  # a bare string is a mistake, not one scope
            bad = [scope for scope in granted if not isinstance(scope, str) or not _SCOPE_SHAPE.fullmatch(scope)]
            if bad or not granted:
                raise ValueError(
                    "scopes must be a non-empty list of scope names such as api.model.read "
                    "(None for an unrestricted key; an empty list would mint a key that can do nothing)"
                )
            granted = tuple(dict.fromkeys(granted))
            body["scopes"] = list(granted)
        if expires_in_seconds is not None:
            _check_lifetime(expires_in_seconds, None)
            body["expires_in_seconds"] = expires_in_seconds
        response = self._call(
            "POST",
            f"/organization/projects/{_seg(project_id)}/service_accounts/{_seg(service_account_id)}/api_keys",
            "create service account key",
            json_body=body,
            idempotent=False,
        )
        return MintedServiceAccountKey.from_api(response.body, service_account_id=service_account_id, scopes=granted)

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

    # --- requests and paging ----------------------------------------------------------------------

    def _call(self, method: str, path: str, operation: str, **kwargs: Any) -> ApiResponse:
        """One admin-API request with the admin key."""
        return self._transport.request(method, path, bearer=self._admin_key, operation=operation, **kwargs)

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


_seg = path_segment


def _check_lifetime(seconds: Any, maximum: int | None) -> None:
    ok = isinstance(seconds, int) and not isinstance(seconds, bool) and seconds >= 1
    if not ok or (maximum is not None and seconds > maximum):
        bound = f"from 1 to {maximum}" if maximum is not None else "of at least 1"
        raise ValueError(f"expires_in_seconds must be an integer {bound} (or None for no expiry)")
