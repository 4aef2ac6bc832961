"""testSecret's proof that a new admin key can do everything keyrot does with it, called with that key.

- list admin keys (liveness, and the next admin rotation lists them);
- list service accounts in the project, and create one and delete it: no read-only call proves the write permission
  the application rotation needs (creating an admin key needs the same management write permission, and minting a
  third admin key to prove it would break the two-key bound). The probe is keyless, named
  `keyrot-admin-probe:<env>:<token>`, deleted at once; a probe left by an interrupted attempt is deleted first;
- list the project's keys (the inventory and the monitor);
- read usage and costs (the monitor);
- read the audit log. If the organization has audit logging off, the current admin key cannot read it either: that
  is the organization's setting, not a defect of the new key, and the key is accepted (the reason is reported).

A refusal (invalid key, missing permission, unknown project) is an AdminKeyValidationError naming the capability;
anything transient (5xx, 429, timeouts) is raised as OpenAI's typed error, for Secrets Manager's retry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from keyrot.admin_rotation.errors import AdminKeyValidationError
from keyrot.admin_rotation.naming import ProbeAccountName
from keyrot.openai_admin import (
    AuditLogUnavailableError,
    BadRequestError,
    InvalidKeyError,
    NotFoundError,
    OpenAIAdminClient,
    PermissionDeniedError,
)

_REFUSALS = (InvalidKeyError, PermissionDeniedError, NotFoundError, BadRequestError)


@contextmanager
def capability(key_id: str | None, what: str) -> Iterator[None]:
    """Report OpenAI refusing the new key `what` as AdminKeyValidationError (transient errors pass through)."""
    try:
        yield
    except _REFUSALS as exc:
        raise AdminKeyValidationError(
            f"the new admin key {key_id or '(id unknown)'} cannot {what} ({exc}); it is not promoted and AWSCURRENT "
            "is unchanged"
        ) from exc


def wait_until_live(
    admin: OpenAIAdminClient, key_id: str | None, *, attempts: int, delay_seconds: float, sleep: Callable[[float], None]
) -> None:
    """List admin keys with the new key until it authenticates (a new key may take a moment), or refuse it."""
    for attempt in range(attempts):
        if attempt:
            sleep(delay_seconds)
        try:
            with capability(key_id, "list admin keys"):
                admin.check_admin_key()
            return
        except AdminKeyValidationError as exc:
            if not isinstance(exc.__cause__, InvalidKeyError) or attempt == attempts - 1:
                raise


def check_capabilities(
    admin: OpenAIAdminClient,
    *,
    key_id: str | None,
    project_id: str,
    probe_name: ProbeAccountName,
    now: datetime,
    current: Callable[[], OpenAIAdminClient],
) -> tuple[str, ...]:
    """Prove each capability with `admin` (the new key); returns notes on what was accepted with a reason."""
    notes: list[str] = []
    with capability(key_id, f"list service accounts in project {project_id}"):
        accounts = list(admin.iter_service_accounts(project_id))
    with capability(key_id, f"create and delete a service account in project {project_id}"):
        for account in accounts:
            if account.name == str(probe_name):  # left by an interrupted attempt
                admin.delete_service_account(project_id, account.id)
        probe = admin.create_service_account_without_key(project_id, str(probe_name))
        if not admin.delete_service_account(project_id, probe.id):
            raise AdminKeyValidationError(f"the probe service account {probe.id} vanished before it was deleted")
    with capability(key_id, f"list the keys of project {project_id}"):
        next(iter(admin.iter_project_api_keys(project_id)), None)
    start = int(now.timestamp())
    with capability(key_id, "read usage"):
        admin.check_usage_access(start)
    with capability(key_id, "read costs"):
        next(iter(admin.iter_cost_pages({"start_time": start - 86400, "limit": 1})))
    try:
        with capability(key_id, "read the audit log"):
            admin.check_audit_log_access()
    except AdminKeyValidationError as exc:
        if not isinstance(exc.__cause__, AuditLogUnavailableError) or _current_reads_audit_log(current()):
            raise
        notes.append("the audit log is off for the organization (the current admin key cannot read it either)")
    return tuple(notes)


def _current_reads_audit_log(current: OpenAIAdminClient) -> bool:
    try:
        current.check_audit_log_access()
    except AuditLogUnavailableError:
        return False
    return True
