"""Which AWS region a KeyProvider reads its secret from, resolved once, with an error that says how to fix it.

The order: the `region_name` argument; the region in the secret's ARN (a secret can only be read in its own
region); `AWS_REGION` (the variable the AWS SDKs and the Lambda, ECS and App Runner runtimes set), then
`AWS_DEFAULT_REGION`; then the region of the active AWS profile (`AWS_PROFILE`, ~/.aws/config).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from botocore.exceptions import BotoCoreError

from keyrot.errors import ConfigurationError

ENV_REGION = "AWS_REGION"
ENV_DEFAULT_REGION = "AWS_DEFAULT_REGION"


def region_of_arn(secret_id: str) -> str | None:
    """The region of a Secrets Manager ARN (arn:<partition>:secretsmanager:<region>:...), else None."""
    parts = secret_id.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[2] == "secretsmanager" and parts[3]:
        return parts[3]
    return None


def resolve_region(secret_id: str, region_name: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The region to read `secret_id` in. Raises ConfigurationError naming every way to give one."""
    candidates = (
        ("the region_name argument", region_name),
        ("the secret's ARN", region_of_arn(secret_id)),
        (ENV_REGION, environ.get(ENV_REGION)),
        (ENV_DEFAULT_REGION, environ.get(ENV_DEFAULT_REGION)),
    )
    for source, value in candidates:
        if value is not None and value.strip():
            return _valid(value.strip(), source)
    profile_region = _profile_region()
    if profile_region:
        return _valid(profile_region, "the AWS profile's region")
    raise ConfigurationError(
        f"KeyProvider has no AWS region to read {secret_id!r} in: pass region_name=..., set {ENV_REGION} "
        f"(or {ENV_DEFAULT_REGION}), give the secret's full ARN, or set a region in the AWS profile"
    )


def _valid(region: str, source: str) -> str:
    from botocore.utils import validate_region_name

    try:
        validate_region_name(region)
    except BotoCoreError as exc:
        raise ConfigurationError(f"{source} gives {region[:64]!r}, which is not an AWS region name") from exc
    return region


def _profile_region() -> str | None:
    """The region botocore would take from the profile (AWS_PROFILE or default) in the AWS config file."""
    import boto3

    try:
        return boto3.session.Session().region_name
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        raise ConfigurationError(f"cannot read the AWS profile for its region: {exc}") from exc
