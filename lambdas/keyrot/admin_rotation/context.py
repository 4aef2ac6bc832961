"""Everything an admin rotation step or cleanup needs, injected: Secrets Manager, OpenAI, settings, clock, sleep.

Unlike the application rotation, no admin client is built from the secret up front: each step chooses which admin
key it calls OpenAI with (the current one, or the pending one it validates), so it builds the client itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keyrot.admin_rotation.errors import UndeclaredAdminSecretError
from keyrot.admin_rotation.value import AdminKeyValue
from keyrot.aws.errors import aws_errors
from keyrot.aws.secrets import SecretDescription, SecretStore
from keyrot.constants import ENV_ADMIN_SECRET_ARN, STAGE_CURRENT
from keyrot.errors import AdminKeyError
from keyrot.names import utc_now
from keyrot.openai_admin import OpenAIAdminClient, OpenAITransport
from keyrot.settings import AdminRotationSettings


@dataclass
class AdminRotationContext:
    secrets: Any  # the boto3 Secrets Manager client (version dates); `store` wraps it
    store: SecretStore
    settings: AdminRotationSettings
    transport: OpenAITransport
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = utc_now

    def client(self, admin_key: str) -> OpenAIAdminClient:
        """An admin client calling OpenAI with `admin_key` (the current key, or the pending one under test)."""
        return OpenAIAdminClient(admin_key, self.transport)

    def describe(self, secret_id: str | None = None) -> SecretDescription:
        """The admin-key secret, after checking it is the one the deployment declares (raises otherwise)."""
        description = self.store.describe(secret_id or self.settings.admin_secret_arn)
        if description.arn != self.settings.admin_secret_arn:
            raise UndeclaredAdminSecretError(
                f"secret {description.name} is not the admin-key secret this deployment declares "
                f"({ENV_ADMIN_SECRET_ARN}); refusing to touch it"
            )
        return description

    def read(self, stage: str | None, version_id: str | None = None) -> AdminKeyValue | None:
        """The value of one version (None when it has none yet). AdminKeyError when it breaks the contract."""
        text = self.store.get_string(self.settings.admin_secret_arn, stage=stage, version_id=version_id)
        return AdminKeyValue.from_json(text) if text is not None else None

    def current(self, description: SecretDescription) -> AdminKeyValue:
        """The AWSCURRENT admin key; AdminKeyError when the secret holds none."""
        value = self.read(STAGE_CURRENT, description.version_with(STAGE_CURRENT))
        if value is None:
            raise AdminKeyError(
                f"the admin-key secret {description.name} holds no value: put the OpenAI admin key with "
                f"`keyrot admin-key set --env {self.settings.environment}` (docs/runbook.md#admin-key-missing)"
            )
        return value

    def version_created(self, version_id: str) -> datetime | None:
        """When Secrets Manager created a version of the admin-key secret (ListSecretVersionIds), if listed."""
        kwargs: dict[str, Any] = {"SecretId": self.settings.admin_secret_arn, "IncludeDeprecated": False}
        with aws_errors("ListSecretVersionIds"):
            while True:
                page = self.secrets.list_secret_version_ids(**kwargs)
                for version in page.get("Versions", []):
                    if version.get("VersionId") == version_id and isinstance(version.get("CreatedDate"), datetime):
                        return version["CreatedDate"]  # type: ignore[no-any-return]
                token = page.get("NextToken")
                if not token or token == kwargs.get("NextToken"):
                    return None
                kwargs["NextToken"] = token


def build_admin_rotation_context(
    settings: AdminRotationSettings,
    secrets_client: Any,
    *,
    transport: OpenAITransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = utc_now,
) -> AdminRotationContext:
    """Wire the real adapters. Nothing is read yet: the admin key is read by the step that uses it."""
    return AdminRotationContext(
        secrets=secrets_client,
        store=SecretStore(secrets_client),
        settings=settings,
        transport=transport or OpenAITransport(settings.openai_base_url, sleep=sleep),
        sleep=sleep,
        now=now,
    )
