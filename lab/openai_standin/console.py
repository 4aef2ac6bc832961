"""The stand-in's "console": what a person does in OpenAI's dashboard, recorded in the audit log with a session actor.

Tests use it to change the organization as a human would (a key made by hand, a limit raised in the console) and
then check that keyrot notices. Each change goes through the same state code the API uses, so a refusal (a rate
limit above the organization's maximum) is the API's own `ApiError`, and the world is left unchanged.
"""

from __future__ import annotations

from typing import Any

from lab.openai_standin import guardrails
from lab.openai_standin.audit import Actor
from lab.openai_standin.protocol import ApiError
from lab.openai_standin.state import OWNER_EMAIL, OWNER_USER_ID, ApiKey, OrganizationState


class Console:
    """One user's dashboard session (by default the organization owner)."""

    def __init__(self, state: OrganizationState, *, user_id: str = OWNER_USER_ID, email: str = OWNER_EMAIL) -> None:
        self.state = state
        self.actor = Actor.session(user_id, email)

    def as_user(self, email: str, user_id: str = "user_consoleperson") -> Console:
        return Console(self.state, user_id=user_id, email=email)

    # --- keys and service accounts ------------------------------------------------------------------------------

    def create_project_key(self, project_id: str, name: str = "made by hand") -> tuple[str, str]:
        """A user key made in the dashboard. Returns (key id, value)."""
        return self.state.add_user_key(
            project_id, name, email=self.actor.email or OWNER_EMAIL, user_id=self.actor.user_id
        )

    def delete_project_key(self, project_id: str, key_id: str) -> None:
        self.state.delete_user_key(self._key(project_id, key_id), actor=self.actor)

    def create_service_account(self, project_id: str, name: str) -> tuple[str, str, str]:
        """A service account and its key made in the dashboard. Returns (account id, key id, key value)."""
        account, key = self.state.create_service_account(
            project_id, name, with_key=True, expires_in=None, actor=self.actor
        )
        assert key is not None
        return account.id, key.id, key.value

    def delete_service_account(self, project_id: str, service_account_id: str) -> None:
        account = self.state.service_accounts.get(service_account_id)
        if account is None or account.project_id != project_id or account.deleted_at is not None:
            raise ApiError(404, f"No such service account: {service_account_id}")
        self.state.delete_service_account(account, actor=self.actor)

    def create_admin_key(self, name: str = "made in the console", expires_in: int | None = None) -> tuple[str, str]:
        """An admin key an owner made by hand. Returns (key id, value)."""
        key = self.state.create_admin_key(name, expires_in=expires_in, actor=self.actor)
        return key.id, key.value

    def delete_admin_key(self, key_id: str) -> None:
        key = self.state.admin_key_by_id(key_id)
        if key is None:
            raise ApiError(404, f"No such admin API key: {key_id}")
        self.state.delete_admin_key(key, actor=self.actor)

    # --- guardrails ---------------------------------------------------------------------------------------------

    def update_rate_limit(self, project_id: str, model: str, **limits: int) -> dict[str, Any]:
        """Change a model's limits, e.g. max_requests_per_1_minute=100 (recorded as rate_limit.updated)."""
        return self.state.update_rate_limit(project_id, f"rl-{model}", limits, actor=self.actor)

    def set_spend_limit(self, project_id: str, cents: int) -> None:
        """The spec has no audit event type for spend limits: the change is made but nothing is recorded."""
        amount = guardrails.spend_limit_cents({"threshold_amount": cents, "currency": "USD", "interval": "month"})
        with self.state.lock:
            self.state.guardrails_for(project_id).spend_limit_cents = amount

    def delete_spend_limit(self, project_id: str) -> None:
        with self.state.lock:
            self.state.guardrails_for(project_id).spend_limit_cents = None

    def create_spend_alert(self, project_id: str, cents: int, recipients: list[str]) -> str:
        """No audit event type exists for spend alerts either. Returns the alert id."""
        body = {
            "threshold_amount": cents,
            "currency": "USD",
            "interval": "month",
            "notification_channel": {"type": "email", "recipients": recipients},
        }
        return self.state.create_spend_alert(project_id, body)[0]

    def delete_spend_alert(self, project_id: str, alert_id: str) -> None:
        with self.state.lock:
            if self.state.guardrails_for(project_id).spend_alerts.pop(alert_id, None) is None:
                raise ApiError(404, f"No such spend alert: {alert_id}")

    def set_model_permissions(self, project_id: str, mode: str, model_ids: list[str]) -> None:
        """No audit event type exists for model permissions: the change is made but nothing is recorded."""
        permissions = guardrails.model_permissions({"mode": mode, "model_ids": model_ids})
        with self.state.lock:
            self.state.guardrails_for(project_id).model_permissions = permissions

    # --- projects -----------------------------------------------------------------------------------------------

    def create_project(self, name: str) -> str:
        project_id = self.state.add_project(name=name)
        details = {"id": project_id, "data": {"name": name, "title": name}}
        self.state.record("project.created", self.actor, project_id, project_id, details)
        return project_id

    def rename_project(self, project_id: str, title: str) -> None:
        with self.state.lock:
            self.state.projects[project_id].name = title
        details = {"id": project_id, "changes_requested": {"title": title}}
        self.state.record("project.updated", self.actor, project_id, project_id, details)

    def archive_project(self, project_id: str) -> None:
        with self.state.lock:
            self.state.projects[project_id].archived = True
        self.state.record("project.archived", self.actor, project_id, project_id, {"id": project_id})

    def _key(self, project_id: str, key_id: str) -> ApiKey:
        key = self.state.keys.get(key_id)
        if key is None or key.project_id != project_id or key.deleted:
            raise ApiError(404, f"No such API key: {key_id}")
        return key
