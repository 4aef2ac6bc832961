"""The admin key as keyrot's functions and CLI use it: read from its secret, and its rejections explained.

One home for both, imported by rotation, monitor and CLI through `keyrot.openai_admin`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from keyrot.aws.secrets import SecretStore
from keyrot.constants import STAGE_CURRENT
from keyrot.errors import AdminKeyError
from keyrot.openai_admin.client import OpenAIAdminClient
from keyrot.openai_admin.errors import InvalidKeyError, PermissionDeniedError
from keyrot.openai_admin.transport import OpenAITransport
from keyrot.secret_model import AdminCredentials


class AdminKeySource(Protocol):
    """Where the admin key lives: what every settings object of keyrot's functions and CLI carries."""

    @property
    def environment(self) -> str: ...

    @property
    def admin_secret_arn(self) -> str: ...


def load_admin_client(store: SecretStore, settings: AdminKeySource, transport: OpenAITransport) -> OpenAIAdminClient:
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
