"""Stand-in routes for the governance endpoints: admin API keys, the audit log, and a project's guardrails.

Each handler takes the stand-in, then what every route gets (principal, path params, query, JSON body, headers),
and answers as the spec's operation does. Mutations are made in the caller's name (`Actor`) so the audit log shows
who did them; the console hook (console.py) makes the same changes as a user would in the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lab.openai_standin import guardrails
from lab.openai_standin.protocol import ApiError, Reply, cursor_page, json_object, one
from lab.openai_standin.state import AdminKey, Principal

if TYPE_CHECKING:
    from lab.openai_standin.server import OpenAIStandIn

Params = dict[str, str]
Query = dict[str, list[str]]
Headers = dict[str, str]

MAX_ADMIN_KEY_LIFETIME = 31_536_000  # the spec's maximum for expires_in_seconds on admin keys
PROJECT_PATH = r"/v1/organization/projects/(?P<project_id>[^/]+)"


# --- admin API keys ----------------------------------------------------------------------------------------------


def admin_key_payload(key: AdminKey) -> dict[str, Any]:
    return {
        "object": "organization.admin_api_key",
        "id": key.id,
        "name": key.name,
        "redacted_value": f"{key.value[:9]}...{key.value[-3:]}",
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
        "owner": {
            "type": "user",
            "object": "organization.user",
            "id": key.owner_id,
            "name": key.owner_name,
            "created_at": key.created_at,
            "role": "owner",
        },
    }


def list_admin_keys(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.read", headers)
    order = one(query, "order") or "asc"
    if order not in ("asc", "desc"):
        raise ApiError(400, "Invalid value for 'order': expected asc or desc.", param="order")
    with standin.state.lock:
        keys = list(standin.state.admin_keys.values())  # in creation order
        hidden = {key.id for key in keys if key.revoked}
        payloads = [admin_key_payload(key) for key in keys]
    return Reply(200, cursor_page(payloads[::-1] if order == "desc" else payloads, query, hidden=hidden))


def create_admin_key(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    caller = standin.require_admin(principal, "api.management.write", headers)
    body = json_object(body)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "Missing required parameter: 'name'.", param="name")
    expires_in = body.get("expires_in_seconds")
    if expires_in is not None and (
        not isinstance(expires_in, int) or isinstance(expires_in, bool) or not 1 <= expires_in <= MAX_ADMIN_KEY_LIFETIME
    ):
        raise ApiError(
            400,
            f"Invalid value for 'expires_in_seconds': must be between 1 and {MAX_ADMIN_KEY_LIFETIME}.",
            param="expires_in_seconds",
        )
    key = standin.state.create_admin_key(name, expires_in=expires_in, actor=caller.actor)
    return Reply(200, {**admin_key_payload(key), "value": key.value})


def _admin_key(standin: OpenAIStandIn, params: Params) -> AdminKey:
    key = standin.state.admin_key_by_id(params["key_id"])
    if key is None:
        raise ApiError(404, f"No such admin API key: {params['key_id']}")
    return key


def get_admin_key(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.read", headers)
    return Reply(200, admin_key_payload(_admin_key(standin, params)))


def delete_admin_key(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    """Deleting an admin key ends it at once, the caller's own included (whether OpenAI allows a key to delete
    itself is unconfirmed; the stand-in does)."""
    caller = standin.require_admin(principal, "api.management.write", headers)
    key = _admin_key(standin, params)
    standin.state.delete_admin_key(key, actor=caller.actor)
    return Reply(200, {"id": key.id, "object": "organization.admin_api_key.deleted", "deleted": True})


# --- audit log ---------------------------------------------------------------------------------------------------


def list_audit_logs(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.audit_log.read", headers)
    return Reply(200, standin.state.audit.page(query))


# --- rate limits -------------------------------------------------------------------------------------------------


def list_rate_limits(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.read", headers)
    project = standin.require_project(params["project_id"])
    with standin.state.lock:
        limits = [limit.payload() for limit in standin.state.guardrails_for(project).rate_limits.values()]
    return Reply(200, cursor_page(limits, query, default_limit=100))


def update_rate_limit(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    caller = standin.require_admin(principal, "api.management.write", headers)
    project = standin.require_project(params["project_id"])
    return Reply(200, standin.state.update_rate_limit(project, params["rate_limit_id"], body, actor=caller.actor))


# --- hard spend limit --------------------------------------------------------------------------------------------


def spend_limit_payload(cents: int) -> dict[str, Any]:
    return {
        "object": "project.spend_limit",
        "threshold_amount": cents,
        "currency": "USD",
        "interval": "month",
        "enforcement": {"status": "enforcing"},
    }


def get_spend_limit(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.read", headers)
    project = standin.require_project(params["project_id"])
    cents = standin.state.guardrails_for(project).spend_limit_cents
    if cents is None:
        raise ApiError(404, f"Project {project} has no hard spend limit.")
    return Reply(200, spend_limit_payload(cents))


def set_spend_limit(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.write", headers)
    project = standin.require_project(params["project_id"])
    cents = guardrails.spend_limit_cents(body)
    with standin.state.lock:
        standin.state.guardrails_for(project).spend_limit_cents = cents
    return Reply(200, spend_limit_payload(cents))


def delete_spend_limit(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    """Deleting a limit that is not set succeeds too (idempotent, like OpenAI's other project settings deletes)."""
    standin.require_admin(principal, "api.management.write", headers)
    project = standin.require_project(params["project_id"])
    with standin.state.lock:
        standin.state.guardrails_for(project).spend_limit_cents = None
    return Reply(200, {"object": "project.spend_limit.deleted", "deleted": True})


# --- spend alerts ------------------------------------------------------------------------------------------------


def list_spend_alerts(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.read", headers)
    project = standin.require_project(params["project_id"])
    order = one(query, "order") or "asc"
    if order not in ("asc", "desc"):
        raise ApiError(400, "Invalid value for 'order': expected asc or desc.", param="order")
    with standin.state.lock:
        alerts = [_alert_payload(i, a) for i, a in standin.state.guardrails_for(project).spend_alerts.items()]
    alerts = alerts[::-1] if order == "desc" else alerts
    return Reply(200, cursor_page(alerts, query, min_limit=0))


def create_spend_alert(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.write", headers)
    project = standin.require_project(params["project_id"])
    alert_id, alert = standin.state.create_spend_alert(project, body)
    return Reply(200, _alert_payload(alert_id, alert))


def _alert(standin: OpenAIStandIn, params: Params) -> tuple[str, dict[str, Any]]:
    project = standin.require_project(params["project_id"])
    alert = standin.state.guardrails_for(project).spend_alerts.get(params["alert_id"])
    if alert is None:
        raise ApiError(404, f"No such spend alert: {params['alert_id']}")
    return project, alert


def get_spend_alert(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.read", headers)
    _, alert = _alert(standin, params)
    return Reply(200, _alert_payload(params["alert_id"], alert))


def update_spend_alert(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.write", headers)
    project, _ = _alert(standin, params)
    fields = guardrails.spend_alert_fields(body)
    with standin.state.lock:
        standin.state.guardrails_for(project).spend_alerts[params["alert_id"]] = fields
    return Reply(200, _alert_payload(params["alert_id"], fields))


def delete_spend_alert(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.write", headers)
    project, _ = _alert(standin, params)
    with standin.state.lock:
        del standin.state.guardrails_for(project).spend_alerts[params["alert_id"]]
    return Reply(200, {"id": params["alert_id"], "object": "project.spend_alert.deleted", "deleted": True})


def _alert_payload(alert_id: str, alert: dict[str, Any]) -> dict[str, Any]:
    return {"id": alert_id, "object": "project.spend_alert", **alert}


# --- model permissions -------------------------------------------------------------------------------------------


def get_model_permissions(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.read", headers)
    project = standin.require_project(params["project_id"])
    return Reply(200, standin.state.guardrails_for(project).model_permissions_payload())


def set_model_permissions(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.write", headers)
    project = standin.require_project(params["project_id"])
    permissions = guardrails.model_permissions(body)
    with standin.state.lock:
        rails = standin.state.guardrails_for(project)
        rails.model_permissions = permissions
        return Reply(200, rails.model_permissions_payload())


def delete_model_permissions(
    standin: OpenAIStandIn, principal: Principal, params: Params, query: Query, body: Any, headers: Headers
) -> Reply:
    standin.require_admin(principal, "api.management.write", headers)
    project = standin.require_project(params["project_id"])
    with standin.state.lock:
        standin.state.guardrails_for(project).model_permissions = None
    return Reply(200, {"object": "project.model_permissions.deleted", "deleted": True})


_ORG = "/v1/organization"
_P = PROJECT_PATH
# (method, path pattern, endpoint name, handler): the server routes these; tests name endpoints from here.
ROUTES: tuple[tuple[str, str, str, Callable[..., Reply]], ...] = (
    ("GET", f"{_ORG}/admin_api_keys", "list_admin_api_keys", list_admin_keys),
    ("POST", f"{_ORG}/admin_api_keys", "create_admin_api_key", create_admin_key),
    ("GET", f"{_ORG}/admin_api_keys/(?P<key_id>[^/]+)", "get_admin_api_key", get_admin_key),
    ("DELETE", f"{_ORG}/admin_api_keys/(?P<key_id>[^/]+)", "delete_admin_api_key", delete_admin_key),
    ("GET", f"{_ORG}/audit_logs", "list_audit_logs", list_audit_logs),
    ("GET", f"{_P}/rate_limits", "list_rate_limits", list_rate_limits),
    ("POST", f"{_P}/rate_limits/(?P<rate_limit_id>[^/]+)", "update_rate_limit", update_rate_limit),
    ("GET", f"{_P}/spend_limit", "get_spend_limit", get_spend_limit),
    ("POST", f"{_P}/spend_limit", "set_spend_limit", set_spend_limit),
    ("DELETE", f"{_P}/spend_limit", "delete_spend_limit", delete_spend_limit),
    ("GET", f"{_P}/spend_alerts", "list_spend_alerts", list_spend_alerts),
    ("POST", f"{_P}/spend_alerts", "create_spend_alert", create_spend_alert),
    ("GET", f"{_P}/spend_alerts/(?P<alert_id>[^/]+)", "get_spend_alert", get_spend_alert),
    ("POST", f"{_P}/spend_alerts/(?P<alert_id>[^/]+)", "update_spend_alert", update_spend_alert),
    ("DELETE", f"{_P}/spend_alerts/(?P<alert_id>[^/]+)", "delete_spend_alert", delete_spend_alert),
    ("GET", f"{_P}/model_permissions", "get_model_permissions", get_model_permissions),
    ("POST", f"{_P}/model_permissions", "set_model_permissions", set_model_permissions),
    ("DELETE", f"{_P}/model_permissions", "delete_model_permissions", delete_model_permissions),
)
ENDPOINTS = tuple(name for _, _, name, _ in ROUTES)
