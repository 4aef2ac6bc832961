"""Everything a rotation step needs, injected: Secrets Manager, OpenAI (admin and probe), settings, clock, sleep."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keyrot.aws.secrets import SecretStore
from keyrot.constants import STAGE_CURRENT
from keyrot.errors import AdminKeyError
from keyrot.openai_admin import (
    InvalidKeyError,
    OpenAIAdminClient,
    OpenAIKeyProbe,
    OpenAITransport,
    PermissionDeniedError,
)
from keyrot.secret_model import AdminCredentials
from keyrot.settings import RotationSettings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RotationContext:
    store: SecretStore
    settings: RotationSettings
    admin_factory: Callable[[], OpenAIAdminClient]
    probe: OpenAIKeyProbe
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = utc_now
    _admin: OpenAIAdminClient | None = field(default=None, init=False, repr=False)

    def admin(self) -> OpenAIAdminClient:
        """The admin client, created on first use (steps that need no admin key never read it)."""
        if self._admin is None:
            self._admin = self.admin_factory()
        return self._admin


def build_rotation_context(
    settings: RotationSettings,
    secrets_client: Any,
    *,
    transport: OpenAITransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = utc_now,
) -> RotationContext:
    """Wire the real adapters. The admin key is read from its secret lazily, once per context."""
    store = SecretStore(secrets_client)
    transport = transport or OpenAITransport(settings.openai_base_url, sleep=sleep)
    return RotationContext(
        store=store,
        settings=settings,
        admin_factory=lambda: load_admin_client(store, settings, transport),
        probe=OpenAIKeyProbe(transport),
        sleep=sleep,
        now=now,
    )


def load_admin_client(store: SecretStore, settings: RotationSettings, transport: OpenAITransport) -> OpenAIAdminClient:
    """Read the admin key (AWSCURRENT of the admin-key secret) and return a client holding it."""
    text = store.get_string(settings.admin_secret_arn, stage=STAGE_CURRENT)
    if text is None:
        raise AdminKeyError(
            f"the admin-key secret {settings.admin_secret_arn} holds no value: put the OpenAI admin key with "
            f"`keyrot admin-key set --env {settings.environment}` (docs/runbook.md#admin-key-missing)"
        )
    credentials = AdminCredentials.from_json(text)
    return OpenAIAdminClient(credentials.admin_key, transport)


@contextmanager
def admin_errors() -> Iterator[None]:
    """Report the admin key being rejected as AdminKeyError, which says what to fix."""
    try:
        yield
    except InvalidKeyError as exc:
        raise AdminKeyError(
            f"the OpenAI admin key was rejected as invalid or revoked ({exc}); put a valid admin key "
            "(docs/runbook.md#admin-key-missing)"
        ) from exc
    except PermissionDeniedError as exc:
        raise AdminKeyError(
            f"the OpenAI admin key lacks permission for this call ({exc}); it must be an organization "
            "admin key with write access to projects"
        ) from exc
