"""A real HTTP server on 127.0.0.1 that answers like the OpenAI API for the endpoints keyrot uses.

Shapes follow OpenAI's OpenAPI spec (tests validate every response against it). Behaviour the spec leaves open
follows the fact sheet in shared/notes/openai-admin-api.md; where that is unconfirmed, the choice is noted here.
"""

from __future__ import annotations

import functools
import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lab.openai_standin import governance_routes as gov
from lab.openai_standin.console import Console
from lab.openai_standin.faults import Fault, FaultPlan
from lab.openai_standin.protocol import (
    ApiError,
    Reply,
    bearer_of,
    cursor_page,
    error_body,
    json_body,
    masked,
    missing_scope,
)
from lab.openai_standin.state import AdminKey, ApiKey, OrganizationState, Principal, new_id
from lab.openai_standin.usage import USAGE_FIELDS, QueryError, costs_page, usage_page

__all__ = ["DEFAULT_MODELS", "ApiError", "CallRecord", "OpenAIStandIn", "Reply"]

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4.1", "text-embedding-3-small", "omni-moderation-latest")
_PROJECT = gov.PROJECT_PATH
# Scopes the model endpoints need from a restricted key. The spec lists no scopes; these are the names OpenAI's
# missing-scope refusals carry in the wild (fact sheet section 10; "Missing scopes: model.request" on inference).
MODEL_READ_SCOPE = "api.model.read"
MODEL_REQUEST_SCOPE = "model.request"


@dataclass
class CallRecord:
    """One request as the stand-in saw it. Holds key ids, never key values (the body is kept for schema checks)."""

    seq: int
    method: str
    path: str
    endpoint: str
    number: int  # 1-based count of calls to this endpoint
    query: dict[str, list[str]]
    status: int | None
    principal: str
    key_id: str | None
    fault: str | None
    started: float
    seconds: float
    body: Any = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # the reply's own headers (Retry-After...)


class OpenAIStandIn:
    """Start with `with OpenAIStandIn() as openai:`; point clients at `openai.base_url`."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        revocation_delay_seconds: float = 0.0,
        activation_delay_seconds: float = 0.0,
        models: tuple[str, ...] = DEFAULT_MODELS,
        requests_per_minute: int = 5000,
    ) -> None:
        self.state = OrganizationState(
            clock, revocation_delay_seconds=revocation_delay_seconds, activation_delay_seconds=activation_delay_seconds
        )
        self.state.guardrail_models = tuple(models)
        self.models = models
        self.requests_per_minute = requests_per_minute
        self.calls: list[CallRecord] = []
        self._calls_lock = threading.Lock()
        self._minute_counts: dict[tuple[str, int], int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[tuple[str, re.Pattern[str], str, Callable[..., Reply]]] = [
            (
                "POST",
                re.compile(rf"{_PROJECT}/service_accounts"),
                "create_service_account",
                self._create_service_account,
            ),
            ("GET", re.compile(rf"{_PROJECT}/service_accounts"), "list_service_accounts", self._list_service_accounts),
            (
                "GET",
                re.compile(rf"{_PROJECT}/service_accounts/(?P<sa>[^/]+)"),
                "get_service_account",
                self._get_service_account,
            ),
            (
                "DELETE",
                re.compile(rf"{_PROJECT}/service_accounts/(?P<sa>[^/]+)"),
                "delete_service_account",
                self._delete_service_account,
            ),
            (
                "POST",
                re.compile(rf"{_PROJECT}/service_accounts/(?P<sa>[^/]+)/api_keys"),
                "create_service_account_key",
                self._create_service_account_key,
            ),
            ("GET", re.compile(rf"{_PROJECT}/api_keys"), "list_project_api_keys", self._list_api_keys),
            ("GET", re.compile(rf"{_PROJECT}/api_keys/(?P<key>[^/]+)"), "get_project_api_key", self._get_api_key),
            (
                "DELETE",
                re.compile(rf"{_PROJECT}/api_keys/(?P<key>[^/]+)"),
                "delete_project_api_key",
                self._delete_api_key,
            ),
            ("GET", re.compile(r"/v1/organization/projects"), "list_projects", self._list_projects),
            *self._governance_routes(),
            ("GET", re.compile(r"/v1/organization/usage/(?P<kind>[^/]+)"), "usage", self._usage),
            ("GET", re.compile(r"/v1/organization/costs"), "costs", self._costs),
            ("GET", re.compile(r"/v1/models"), "list_models", self._list_models),
            ("GET", re.compile(r"/v1/models/(?P<model>[^/]+)"), "get_model", self._get_model),
            ("POST", re.compile(r"/v1/chat/completions"), "chat_completions", self._chat_completions),
        ]
        self.faults = FaultPlan(known_endpoints=self.endpoints)

    def _governance_routes(self) -> list[tuple[str, re.Pattern[str], str, Callable[..., Reply]]]:
        """Admin API keys, the audit log and a project's guardrails (governance_routes.py)."""
        return [
            (method, re.compile(pattern), name, functools.partial(handler, self))
            for method, pattern, name, handler in gov.ROUTES
        ]

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every endpoint name the stand-in routes (what CallRecord.endpoint and Fault.endpoint use)."""
        return tuple(dict.fromkeys(name for _, _, name, _ in self._routes))

    @property
    def console(self) -> Console:
        """A person in OpenAI's dashboard: changes as a human makes them, recorded with a session actor."""
        return Console(self.state)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> OpenAIStandIn:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.standin = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="openai-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OpenAIStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- inspection -----------------------------------------------------------------------------

    def calls_to(self, endpoint: str) -> list[CallRecord]:
        with self._calls_lock:
            return [call for call in self.calls if call.endpoint == endpoint]

    def reset_calls(self) -> None:
        with self._calls_lock:
            self.calls.clear()

    # --- request handling -----------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        """Route, authenticate, apply faults, run the endpoint and record the call."""
        started = time.time()
        split = urlsplit(raw_path)
        query = parse_qs(split.query, keep_blank_values=True)
        endpoint, handler, params = self._route(method, split.path)
        principal = self.state.authenticate(bearer_of(headers))
        number, fault = self.faults.next_call(endpoint)
        delay = self.faults.default_latency_seconds + (fault.latency_seconds if fault else 0.0)
        if delay:
            time.sleep(delay)
        if fault is not None and (fault.status is not None or fault.drop_connection or fault.non_json):
            if fault.after_effect:
                self._run(handler, principal, params, query, body, headers)
            reply = _fault_reply(fault)
        else:
            reply = self._run(handler, principal, params, query, body, headers)
        key_id = principal.key.id if principal.key else (principal.admin.id if principal.admin else None)
        with self._calls_lock:
            self.calls.append(
                CallRecord(
                    seq=len(self.calls) + 1,
                    method=method,
                    path=split.path,
                    endpoint=endpoint,
                    number=number,
                    query=query,
                    status=None if reply.drop else reply.status,
                    principal=principal.kind,
                    key_id=key_id,
                    fault=fault.label if fault else None,
                    started=started,
                    seconds=time.time() - started,
                    body=reply.body,
                    headers=dict(reply.headers),
                )
            )
        return reply

    def _route(self, method: str, path: str) -> tuple[str, Callable[..., Reply] | None, dict[str, str]]:
        path = path.rstrip("/")
        for route_method, pattern, name, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return name, handler, match.groupdict()
        return "unknown", None, {}

    def _run(
        self,
        handler: Callable[..., Reply] | None,
        principal: Principal,
        params: dict[str, str],
        query: dict[str, list[str]],
        body: bytes,
        headers: dict[str, str],
    ) -> Reply:
        if handler is None:
            return ApiError(404, "Invalid URL", error_type="invalid_request_error").reply
        try:
            return handler(principal, params, query, json_body(body), headers)
        except ApiError as exc:
            return exc.reply
        except QueryError as exc:
            return ApiError(400, str(exc), param=exc.param).reply

    # --- auth -------------------------------------------------------------------------------------

    def require_admin(self, principal: Principal, scope: str, headers: dict[str, str]) -> AdminKey:
        """The calling admin key, if it holds `scope`; else OpenAI's refusal for the kind of bearer."""
        if principal.kind == "admin":
            assert principal.admin is not None
            if scope not in principal.admin.scopes:
                raise missing_scope(scope)
            return principal.admin
        self._reject_unauthenticated(principal, headers)
        # A project key on an admin endpoint authenticates but lacks the scope (code null), as OpenAI answers.
        raise missing_scope(scope)

    def _project_key(self, principal: Principal, headers: dict[str, str], scope: str) -> ApiKey:
        """The calling project key, if it may use a model endpoint that needs `scope` (unrestricted keys may)."""
        if principal.kind == "project":
            assert principal.key is not None
            if principal.key.restriction:
                raise ApiError(401, principal.key.restriction)
            if principal.key.scopes is not None and scope not in principal.key.scopes:
                raise missing_scope(scope)
            return principal.key
        if principal.kind == "admin":
            # Unconfirmed status (fact sheet section 11): assume 401 with no code, as for a scope refusal.
            raise ApiError(401, "Admin API keys cannot be used for non-administration endpoints.")
        self._reject_unauthenticated(principal, headers)
        raise AssertionError("unreachable")

    @staticmethod
    def _reject_unauthenticated(principal: Principal, headers: dict[str, str]) -> None:
        if principal.kind == "none":
            raise ApiError(401, "You didn't provide an API key. Provide it in an Authorization header.")
        if principal.kind == "invalid":
            shown = masked(bearer_of(headers) or "")
            raise ApiError(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    def require_project(self, project_id: str) -> str:
        if project_id not in self.state.projects:
            raise ApiError(404, f"No such project: {project_id}")
        return project_id

    # --- service accounts -----------------------------------------------------------------------

    def _create_service_account(
        self, principal: Principal, params: dict[str, str], query: Any, body: Any, headers: dict[str, str]
    ) -> Reply:
        caller = self.require_admin(principal, "api.management.write", headers)
        project_id = self.require_project(params["project_id"])
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise ApiError(400, "Missing required parameter: 'name'.", param="name")
        only = body.get("create_service_account_only")
        if only is not None and not isinstance(only, bool):
            raise ApiError(
                400,
                "Invalid type for 'create_service_account_only': expected a boolean.",
                param="create_service_account_only",
            )
        if only and body.get("expires_in_seconds") is not None:
            raise ApiError(
                400,
                "'expires_in_seconds' cannot be combined with 'create_service_account_only'.",
                param="expires_in_seconds",
            )
        expires_in = _expires_in(body)
        if self.state.projects[project_id].archived:
            raise ApiError(400, f"Project {project_id} is archived.")
        account, key = self.state.create_service_account(
            project_id, body["name"], with_key=not only, expires_in=expires_in, actor=caller.actor
        )
        payload = _service_account_payload(account)
        payload["api_key"] = _key_body(key) if key else None
        return Reply(200, payload)

    def _list_service_accounts(
        self, principal: Principal, params: dict[str, str], query: Any, body: Any, headers: dict[str, str]
    ) -> Reply:
        self.require_admin(principal, "api.management.read", headers)
        self.require_project(params["project_id"])
        with self.state.lock:
            accounts = sorted(
                (a for a in self.state.service_accounts.values() if a.project_id == params["project_id"]),
                key=lambda a: (a.created_at, a.id),
            )
            gone = {a.id for a in accounts if a.deleted_at is not None}
        return Reply(200, cursor_page([_service_account_payload(a) for a in accounts], query, hidden=gone))

    def _account(self, params: dict[str, str]) -> Any:
        self.require_project(params["project_id"])
        account = self.state.service_accounts.get(params["sa"])
        if account is None or account.deleted_at is not None or account.project_id != params["project_id"]:
            raise ApiError(404, f"No such service account: {params['sa']}")
        return account

    def _get_service_account(
        self, principal: Principal, params: dict[str, str], query: Any, body: Any, headers: dict[str, str]
    ) -> Reply:
        self.require_admin(principal, "api.management.read", headers)
        return Reply(200, _service_account_payload(self._account(params)))

    def _delete_service_account(
        self, principal: Principal, params: dict[str, str], query: Any, body: Any, headers: dict[str, str]
    ) -> Reply:
        caller = self.require_admin(principal, "api.management.write", headers)
        account = self._account(params)
        self.state.delete_service_account(account, actor=caller.actor)
        return Reply(200, {"object": "organization.project.service_account.deleted", "id": account.id, "deleted": True})

    def _create_service_account_key(
        self, principal: Principal, params: dict[str, str], query: Any, body: Any, headers: dict[str, str]
    ) -> Reply:
        caller = self.require_admin(principal, "api.management.write", headers)
        account = self._account(params)
        body = body if body is not None else {}
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        name = body.get("name", "Secret Key")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "Invalid value for 'name': expected a non-empty string.", param="name")
        scopes = body.get("scopes")
        if scopes is not None and (not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)):
            raise ApiError(400, "Invalid type for 'scopes': expected an array of strings.", param="scopes")
        known = self.state.known_scopes
        unknown = [scope for scope in scopes or () if known is not None and scope not in known]
        if unknown:
            raise ApiError(400, f"Invalid value for 'scopes': unknown scope {unknown[0]!r}.", param="scopes")
        # Not in the spec's CreateProjectServiceAccountApiKeyBody; openai-python 3.57 sends it, so it is honoured.
        expires_in = _expires_in(body)
        key = self.state.add_service_account_key(
            account, name=name, scopes=scopes, expires_in=expires_in, actor=caller.actor
        )
        return Reply(200, _key_body(key))

    # --- project API keys -----------------------------------------------------------------------

    def _list_api_keys(
        self,
        principal: Principal,
        params: dict[str, str],
        query: dict[str, list[str]],
        body: Any,
        headers: dict[str, str],
    ) -> Reply:
        self.require_admin(principal, "api.management.read", headers)
        project_id = params["project_id"]
        self.require_project(project_id)
        access = (query.get("owner_project_access") or ["active"])[-1]
        if access not in ("active", "inactive", "any"):
            raise ApiError(400, "Invalid value for 'owner_project_access'.", param="owner_project_access")
        with self.state.lock:
            keys = sorted(
                (k for k in self.state.keys.values() if k.project_id == project_id), key=lambda k: (k.created_at, k.id)
            )
            hidden = {k.id for k in keys if k.deleted or access not in ("any", k.owner_project_access)}
            payloads = [self._key_payload(k) for k in keys]
        return Reply(200, cursor_page(payloads, query, hidden=hidden))

    def _key(self, params: dict[str, str]) -> ApiKey:
        self.require_project(params["project_id"])
        key = self.state.keys.get(params["key"])
        if key is None or key.deleted or key.project_id != params["project_id"]:
            raise ApiError(404, f"No such API key: {params['key']}")
        return key

    def _get_api_key(
        self, principal: Principal, params: dict[str, str], query: Any, body: Any, headers: dict[str, str]
    ) -> Reply:
        self.require_admin(principal, "api.management.read", headers)
        return Reply(200, self._key_payload(self._key(params)))

    def _delete_api_key(
        self, principal: Principal, params: dict[str, str], query: Any, body: Any, headers: dict[str, str]
    ) -> Reply:
        caller = self.require_admin(principal, "api.management.write", headers)
        key = self._key(params)
        if key.owner_type == "service_account":
            raise ApiError(400, "API keys owned by service accounts cannot be deleted; delete the service account.")
        self.state.delete_user_key(key, actor=caller.actor)
        return Reply(200, {"object": "organization.project.api_key.deleted", "id": key.id, "deleted": True})

    def _key_payload(self, key: ApiKey) -> dict[str, Any]:
        return {
            "object": "organization.project.api_key",
            "redacted_value": f"{key.value[:6]}...{key.value[-3:]}",
            "name": key.name,
            "created_at": key.created_at,
            "last_used_at": key.last_used_at,
            "id": key.id,
            "owner_project_access": key.owner_project_access,
            "owner": self.state.owner_payload(key),
            "expires_at": key.expires_at,  # openai-python 3.57's ProjectAPIKey has it; spec f85dbe2 does not yet
        }

    # --- organization ---------------------------------------------------------------------------

    def _list_projects(
        self,
        principal: Principal,
        params: dict[str, str],
        query: dict[str, list[str]],
        body: Any,
        headers: dict[str, str],
    ) -> Reply:
        self.require_admin(principal, "api.management.read", headers)
        include_archived = (query.get("include_archived") or ["false"])[-1] == "true"
        projects = [
            {
                "id": p.id,
                "object": "organization.project",
                "name": p.name,
                "created_at": p.created_at,
                "archived_at": p.created_at if p.archived else None,
                "status": "archived" if p.archived else "active",
            }
            for p in self.state.projects.values()
        ]
        hidden = set() if include_archived else {p.id for p in self.state.projects.values() if p.archived}
        return Reply(200, cursor_page(projects, query, hidden=hidden))

    def _usage(
        self,
        principal: Principal,
        params: dict[str, str],
        query: dict[str, list[str]],
        body: Any,
        headers: dict[str, str],
    ) -> Reply:
        self.require_admin(principal, "api.usage.read", headers)
        kind = params["kind"]
        if kind not in USAGE_FIELDS:
            raise ApiError(404, "Invalid URL")
        with self.state.lock:
            return Reply(200, usage_page(kind, list(self.state.usage), query, self.state.clock()))

    def _costs(
        self,
        principal: Principal,
        params: dict[str, str],
        query: dict[str, list[str]],
        body: Any,
        headers: dict[str, str],
    ) -> Reply:
        self.require_admin(principal, "api.usage.read", headers)
        with self.state.lock:
            return Reply(200, costs_page(list(self.state.costs), query, self.state.clock()))

    # --- model endpoints (project keys) -----------------------------------------------------------

    def _rate_headers(self, key: ApiKey) -> dict[str, str]:
        minute = int(self.state.clock() // 60)
        with self._calls_lock:
            count = self._minute_counts.get((key.id, minute), 0) + 1
            self._minute_counts[(key.id, minute)] = count
        remaining = max(0, self.requests_per_minute - count)
        reset = 60 - int(self.state.clock() % 60)
        return {
            "x-ratelimit-limit-requests": str(self.requests_per_minute),
            "x-ratelimit-remaining-requests": str(remaining),
            "x-ratelimit-reset-requests": f"{reset}s",
            "x-ratelimit-limit-tokens": "2000000",
            "x-ratelimit-remaining-tokens": "1999000",
            "x-ratelimit-reset-tokens": "6m0s",
        }

    def _check_guardrails(self, key: ApiKey, model: str) -> None:
        """The project's model permissions and hard spend limit, as an inference call meets them. Neither answer is
        in the spec; both are the bodies OpenAI is seen to send (403 model_not_found; 429 with a billing code)."""
        rails = self.state.guardrails_for(key.project_id)
        if not rails.model_allowed(model):
            raise ApiError(
                403, f"Project `{key.project_id}` does not have access to model `{model}`", code="model_not_found"
            )
        limit = rails.spend_limit_cents
        if limit is not None and self.state.month_to_date_cents(key.project_id) >= limit:
            raise ApiError(
                429,
                "You have reached your project's hard spend limit for this month.",
                code="project_spend_limit_exceeded",
                error_type="insufficient_quota",
            )

    def _list_models(
        self, principal: Principal, params: dict[str, str], query: Any, body: Any, headers: dict[str, str]
    ) -> Reply:
        key = self._project_key(principal, headers, MODEL_READ_SCOPE)
        data = [_model(name) for name in self.models]
        # No x-ratelimit-* headers: OpenAI documents them on model (inference) responses only; whether the models
        # list sends them is unconfirmed, so the stand-in does not promise it.
        self._rate_headers(key)  # still counts the request against the per-minute limit
        return Reply(200, {"object": "list", "data": data}, {})

    def _get_model(
        self, principal: Principal, params: dict[str, str], query: Any, body: Any, headers: dict[str, str]
    ) -> Reply:
        key = self._project_key(principal, headers, MODEL_READ_SCOPE)
        if params["model"] not in self.models:
            raise ApiError(404, f"The model '{params['model']}' does not exist", code="model_not_found")
        return Reply(200, _model(params["model"]), self._rate_headers(key))

    def _chat_completions(
        self, principal: Principal, params: dict[str, str], query: Any, body: Any, headers: dict[str, str]
    ) -> Reply:
        key = self._project_key(principal, headers, MODEL_REQUEST_SCOPE)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            raise ApiError(400, "Missing required parameter: 'messages'.", param="messages")
        model = body.get("model")
        if model not in self.models:
            raise ApiError(404, f"The model '{model}' does not exist", code="model_not_found", param="model")
        self._check_guardrails(key, model)
        words = sum(len(str(m.get("content", "")).split()) for m in body["messages"] if isinstance(m, dict))
        prompt_tokens, completion_tokens = max(1, words * 4 // 3), 9
        self.state.record_usage(
            key.id, "completions", model=model, input_tokens=prompt_tokens, output_tokens=completion_tokens
        )
        self.state.record_cost(
            key.id, prompt_tokens * 0.15e-6 + completion_tokens * 0.6e-6, line_item=f"{model}, input"
        )
        reply = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": self.state.now(),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": "Hello from the keyrot stand-in.", "refusal": None},
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return Reply(200, reply, self._rate_headers(key))


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system", "shutdown_date": None}


def _service_account_payload(account: Any) -> dict[str, Any]:
    return {
        "object": "organization.project.service_account",
        "id": account.id,
        "name": account.name,
        "role": account.role,
        "created_at": account.created_at,
    }


def _key_body(key: ApiKey) -> dict[str, Any]:
    return {
        "object": "organization.project.service_account.api_key",
        "value": key.value,
        "name": key.name,
        "created_at": key.created_at,
        "id": key.id,
        # Not in spec f85dbe2; openai-python 3.57's APIKeyCreateResponse carries it (null when the key never expires).
        "expires_at": key.expires_at,
    }


def _expires_in(body: dict[str, Any]) -> int | None:
    """`expires_in_seconds` from a create body. Its range is undocumented; assume the admin-key range 1-31536000."""
    expires_in = body.get("expires_in_seconds")
    if expires_in is None:
        return None
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or not 1 <= expires_in <= 31_536_000:
        raise ApiError(
            400, "Invalid value for 'expires_in_seconds': must be between 1 and 31536000.", param="expires_in_seconds"
        )
    return expires_in


def _fault_reply(fault: Fault) -> Reply:
    if fault.drop_connection:
        return Reply(0, drop=True)
    status = fault.status or 500
    headers = dict(fault.headers)
    if fault.retry_after is not None:
        # The spec's Retry-After is whole seconds, at least 1. A shorter or fractional wait (fast tests) is sent as
        # retry-after-ms, which OpenAI's SDKs read first, with Retry-After rounded up beside it.
        seconds = max(0.0, float(fault.retry_after))
        headers["retry-after"] = str(max(1, math.ceil(seconds)))
        if not seconds.is_integer() or seconds < 1:
            headers["retry-after-ms"] = str(round(seconds * 1000))
    if status == 429:
        headers.setdefault("x-ratelimit-remaining-requests", "0")
    if fault.non_json:
        page = b"<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>"
        return Reply(status, headers=headers, raw=page)
    return Reply(status, error_body(fault.message, fault.error_type, fault.code), headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    standin: OpenAIStandIn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the client's delayed ACK stalls each reply ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            reply = self.server.standin.handle(method, self.path, headers, body)
        except ApiError as exc:  # JSON body errors surface before routing completes
            reply = exc.reply
        if reply.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        content_type = "text/html" if reply.raw is not None else "application/json"
        try:
            self.send_response(reply.status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(payload)))
            self.send_header("x-request-id", new_id("req_"))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
