"""Whether the admin key can read the organization's audit log (the monitor's tripwire and key inventory need it),
and what to do when it cannot: for `keyrot admin-key set` and `keyrot doctor`."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from keyrot.cli.checks import Finding
from keyrot.cli.context import CliContext
from keyrot.cli.errors import classify
from keyrot.errors import KeyrotError
from keyrot.openai_admin import NO_RETRY, AuditLogUnavailableError, OpenAIAdminClient, PermissionDeniedError
from keyrot.rotation.context import load_admin_client

TITLE = "OpenAI audit log"
ENABLE = (
    "an organization owner turns audit logging on in the OpenAI dashboard: Organization settings > Data controls "
    "(it cannot be turned off again)"
)
WITHOUT = (
    "until then the monitor does not see keys, service accounts or admin keys others create or delete, and lists "
    "every project key on every run"
)


def audit_log_problem(admin: OpenAIAdminClient) -> str | None:
    """None when the admin key can read the audit log; else what is wrong and how to fix it. Raises keyrot's OpenAI
    errors for any other failure (OpenAI unreachable, the key rejected)."""
    try:
        admin.check_audit_log_access()
    except AuditLogUnavailableError:
        return f"audit logging is off for the organization, or the admin key may not read it: {ENABLE}"
    except PermissionDeniedError as exc:
        return f"the admin key may not read the audit log ({exc}): give it the api.audit_log.read permission"
    return None


def doctor_finding(cli: CliContext, environment: str) -> Finding:
    """`keyrot doctor`'s audit-log line: readable (ok), or off / not readable by the admin key (warn, with the fix)."""
    try:
        admin = load_admin_client(cli.store, cli.rotation_settings(environment), cli.transport(NO_RETRY))
        problem = audit_log_problem(admin)
    except (KeyrotError, ClientError, BotoCoreError) as exc:  # the admin key unreadable or rejected, OpenAI down
        found = classify(exc)
        detail = found[1] if found else str(exc)
        return Finding("warn", TITLE, f"cannot check it: {detail}", "see the admin key line")
    if problem is not None:
        return Finding("warn", TITLE, f"{problem}; {WITHOUT}", "docs/runbook.md#audit-log-unreadable")
    return Finding("ok", TITLE, "readable: the monitor's tripwire watches keys, service accounts and admin keys")
