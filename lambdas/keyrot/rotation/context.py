"""Everything a rotation step needs, injected: Secrets Manager, OpenAI (admin and probe), settings, clock, sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keyrot.aws.secrets import SecretStore
from keyrot.openai_admin import OpenAIAdminClient, OpenAIKeyProbe, OpenAITransport, admin_errors, load_admin_client
from keyrot.settings import RotationSettings

# admin_errors and load_admin_client live in keyrot.openai_admin (one home); re-exported for existing importers.
__all__ = ["RotationContext", "admin_errors", "build_rotation_context", "load_admin_client", "utc_now"]


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
