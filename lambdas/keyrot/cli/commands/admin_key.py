"""`keyrot admin-key set`: validate an OpenAI admin key and store it in the environment's admin-key secret.

The key comes from a hidden prompt or from stdin, never from argv (which lands in shell history and `ps`). It is
checked against OpenAI before anything is stored, and only a redacted prefix is ever printed. The key's id is recorded
beside it (given with --key-id, or learnt when it is the organization's only admin key): the monitor's audit-log
tripwire tells keyrot's own actions by it. Whether the key can read the audit log is checked too, and said (with how
to turn audit logging on) without refusing the key.
"""

from __future__ import annotations

from typing import Annotated

import typer

from keyrot.aws.errors import aws_errors
from keyrot.cli import audit_log_check, output
from keyrot.cli.errors import CliError, UsageError
from keyrot.cli.exit_codes import ExitCode
from keyrot.cli.interaction import read_secret
from keyrot.cli.options import Environment, Json, cli_of
from keyrot.openai_admin import InvalidKeyError, OpenAIAdminClient, OpenAIError, PermissionDeniedError
from keyrot.redaction import redact_key, scrub
from keyrot.secret_model import OPENAI_ID_PATTERN, AdminCredentials


def set_admin_key(
    ctx: typer.Context,
    env: Environment,
    key_id: Annotated[
        str | None, typer.Option("--key-id", help="The admin key's id (key_…), recorded beside it.")
    ] = None,
    json_output: Json = False,
) -> None:
    """Read the admin key (hidden prompt, or stdin), check it with OpenAI, then store it. Never echoes it."""
    if ctx.args:
        raise UsageError(
            "admin-key set takes no arguments: the key is read from a hidden prompt or stdin, never from the "
            "command line (if you typed it there, it is in your shell history: replace it)"
        )
    if key_id is not None and not (key_id.startswith("key_") and OPENAI_ID_PATTERN.fullmatch(key_id)):
        raise UsageError(f"--key-id must be an OpenAI key id (key_…), got {scrub(repr(key_id[:40]))}")
    cli = cli_of(ctx)
    arn = cli.admin_secret_arn(env)  # before asking: an unknown environment fails without a prompt
    admin_key = read_secret("OpenAI admin key (input hidden)", what="admin key")
    shown = redact_key(admin_key)
    admin = OpenAIAdminClient(admin_key, cli.transport())
    try:
        admin.check_admin_key()
    except InvalidKeyError as exc:
        raise CliError(f"OpenAI rejected the admin key {shown}; nothing stored ({exc})", ExitCode.OPENAI) from exc
    except PermissionDeniedError as exc:
        raise CliError(
            f"the key {shown} is not an organization admin key with read access; nothing stored ({exc})",
            ExitCode.OPENAI,
        ) from exc
    try:
        admin.check_usage_access(int(cli.now().timestamp()))
    except PermissionDeniedError as exc:
        raise CliError(
            f"the admin key {shown} cannot read usage, which the monitor needs; give it the usage read scope; "
            f"nothing stored ({exc})",
            ExitCode.OPENAI,
        ) from exc
    if key_id is None:
        key_id, id_note = _learn_key_id(admin)
    else:
        id_note = None
    audit_problem = _audit_log_problem(admin, shown)
    with aws_errors("PutSecretValue"):
        response = cli.secrets.put_secret_value(
            SecretId=arn, SecretString=AdminCredentials(admin_key, key_id).to_json()
        )
    for remark in (id_note, audit_problem and f"OpenAI audit log: {audit_problem}; {audit_log_check.WITHOUT}"):
        if remark:
            output.note(remark)
    if json_output:
        output.emit_json(
            "admin-key-set",
            {
                "environment": env,
                "secret_name": response.get("Name"),
                "secret_arn": response.get("ARN", arn),
                "version_id": response.get("VersionId"),
                "key_id": key_id,
                "admin_key": shown,
                "audit_log": {"readable": audit_problem is None, "problem": audit_problem},
            },
        )
        return
    output.line(f"Stored admin key {shown} in {response.get('Name', arn)} (version {response.get('VersionId')})")


def _learn_key_id(admin: OpenAIAdminClient) -> tuple[str | None, str | None]:
    """The stored key's id when OpenAI's listing leaves no doubt (it is the organization's only admin key: the key
    was just accepted, so it is listed), and a remark for the operator either way."""
    try:
        listed = [key.id for key in admin.iter_admin_api_keys()]
    except OpenAIError as exc:
        return None, f"the key's id could not be read ({exc}); {_ID_WHY}"
    if len(listed) == 1:
        return listed[0], f"recorded the key's id {listed[0]} (the organization's only admin key)"
    return (
        None,
        f"the organization has {len(listed)} admin keys: pass --key-id key_... (the dashboard shows it); {_ID_WHY}",
    )


def _audit_log_problem(admin: OpenAIAdminClient, shown: str) -> str | None:
    """What keeps the monitor from reading the audit log with this key (None: nothing). Never refuses the key: the
    rotation and the rest of the monitor work without the audit log."""
    try:
        return audit_log_check.audit_log_problem(admin)
    except OpenAIError as exc:
        return f"could not be checked with {shown} ({exc})"


_ID_WHY = "the monitor's tripwire needs it to tell keyrot's own actions from others' in the audit log"
