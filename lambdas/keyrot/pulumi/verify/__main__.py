"""`python -m keyrot.pulumi.verify` (`make verify-aws`): deploy a temporary environment, check, destroy.

Refuses to do anything without `--i-understand-this-creates-resources`, and names the AWS account and OpenAI project
it would use either way. The OpenAI admin key (of a throwaway project) is read from $KEYROT_VERIFY_ADMIN_KEY or a
hidden prompt, never from the command line.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from keyrot.pulumi.verify.plan import Claim, Report, Step, claim_lines, run_plan

FLAG = "--i-understand-this-creates-resources"
ADMIN_KEY_VARIABLE = "KEYROT_VERIFY_ADMIN_KEY"


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make verify-aws", description=__doc__)
    parser.add_argument(FLAG, dest="confirmed", action="store_true", help="really create (and destroy) resources")
    parser.add_argument("--openai-project", default="", help="a throwaway OpenAI project id (proj_...)")
    parser.add_argument("--notify-email", default="", help="subscribed to the temporary on-call topic")
    parser.add_argument("--region", default=None, help="AWS region (default: the profile's)")
    parser.add_argument("--profile", default=None, help="AWS named profile (default: the credential chain)")
    return parser.parse_args(argv)


def intent(identity: Mapping[str, Any], region: str, project: str) -> str:
    return (
        f"AWS account {identity['Account']} ({identity['Arn']}), region {region}: a temporary keyrot environment "
        f"(KMS key, secrets, two functions, topic, alarms, dashboard), deployed and then destroyed; OpenAI project "
        f"{project}: keys minted and revoked."
    )


def main(
    argv: Sequence[str],
    *,
    session_factory: Callable[..., Any] | None = None,
    plan_factory: Callable[..., tuple[Sequence[Claim], Sequence[Step], dict[str, Any], Callable[[], Any]]]
    | None = None,
    emit: Callable[[str], None] = print,
    read_admin_key: Callable[[], str] | None = None,
) -> int:
    """Exit 0 when every claim passed (or is not checked), 1 otherwise, 2 when refused."""
    args = parse(argv)
    if session_factory is None:
        import boto3

        session_factory = boto3.session.Session
    session = session_factory(profile_name=args.profile, region_name=args.region)
    identity = session.client("sts").get_caller_identity()
    region = session.region_name or "(no region configured)"
    emit(intent(identity, region, args.openai_project or "(--openai-project not given)"))
    if not args.confirmed:
        emit(f"Refusing: nothing was created. Re-run with {FLAG} to create and destroy these resources.")
        return 2
    missing = [
        flag
        for flag, value in (("--openai-project", args.openai_project), ("--notify-email", args.notify_email))
        if not value
    ]
    if session.region_name is None:
        missing.append("--region (or a region in the profile)")
    if missing:
        emit(f"Refusing: nothing was created. Missing {', '.join(missing)}.")
        return 2
    admin_key = (read_admin_key or _read_admin_key)()
    if plan_factory is None:
        plan_factory = _real_plan
    claims, steps, context, secrets_seen = plan_factory(args, session, identity, admin_key)
    report: Report = run_plan(steps, context, emit=emit, secrets=secrets_seen)
    emit("")
    for line in claim_lines(claims, steps, report):
        emit(line)
    return 0 if report.passed else 1


def _read_admin_key() -> str:
    value = os.environ.get(ADMIN_KEY_VARIABLE) or getpass.getpass("OpenAI admin key (throwaway project, hidden): ")
    if not value.strip():
        raise SystemExit("no admin key given")
    return value.strip()


def _real_plan(args: argparse.Namespace, session: Any, identity: Mapping[str, Any], admin_key: str) -> Any:
    from keyrot.pulumi.verify.checks import CLAIMS, Options, Tools, build_steps, temporary_workdir

    environment = f"verify-{secrets.token_hex(3)}"
    administrator = _role_of(session, identity["Arn"])
    options = Options(args.openai_project, args.notify_email, session.region_name, admin_key)
    tools = Tools(session, temporary_workdir())
    steps, held = build_steps(options, tools, environment=environment, administrator=administrator)
    return CLAIMS, steps, {}, lambda: tuple(held)


def _role_of(session: Any, caller_arn: str) -> str:
    """The IAM role behind an assumed-role session (with its path), as resource policies name it."""
    if ":assumed-role/" not in caller_arn:
        return caller_arn
    name = caller_arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
    role_arn: str = session.client("iam").get_role(RoleName=name)["Role"]["Arn"]
    return role_arn


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
