"""Secrets Manager, as the rotation engine sees it: describe, read one version, write the pending version, move labels.

Every read names a VersionStage (and a VersionId when it has one): never a bare read, which moto answers wrongly
and which on AWS races with a rotation. A version that lost every label is read by its VersionId alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from keyrot.aws.errors import as_call_error, aws_errors, error_code
from keyrot.errors import AwsCallError

_NOT_FOUND = "ResourceNotFoundException"


@dataclass(frozen=True)
class SecretDescription:
    """DescribeSecret, reduced to what rotation and monitoring need."""

    arn: str
    name: str
    rotation_enabled: bool
    rotation_lambda_arn: str | None
    tags: tuple[Mapping[str, str], ...]
    versions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    last_rotated: datetime | None = None
    next_rotation: datetime | None = None
    rotation_rules: Mapping[str, Any] = field(default_factory=dict)
    created: datetime | None = None

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> SecretDescription:
        versions = {vid: tuple(stages) for vid, stages in (body.get("VersionIdsToStages") or {}).items()}
        return cls(
            arn=body["ARN"],
            name=body["Name"],
            # Absent before the first rotation under some emulators: absent means "not enabled".
            rotation_enabled=bool(body.get("RotationEnabled", False)),
            rotation_lambda_arn=body.get("RotationLambdaARN") or None,
            tags=tuple(body.get("Tags") or ()),
            versions=versions,
            last_rotated=body.get("LastRotatedDate"),
            next_rotation=body.get("NextRotationDate"),
            rotation_rules=body.get("RotationRules") or {},
            created=body.get("CreatedDate") if isinstance(body.get("CreatedDate"), datetime) else None,
        )

    def version_with(self, stage: str) -> str | None:
        """The id of the version that carries `stage`, or None."""
        return next((vid for vid, stages in self.versions.items() if stage in stages), None)

    def stages_of(self, version_id: str) -> tuple[str, ...]:
        return self.versions.get(version_id, ())

    @property
    def tag_map(self) -> dict[str, str]:
        return {tag["Key"]: tag.get("Value", "") for tag in self.tags}


class SecretStore:
    """Typed Secrets Manager operations. AWS errors become AwsCallError naming the operation and code."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def describe(self, secret_id: str) -> SecretDescription:
        with aws_errors("DescribeSecret"):
            body = self._client.describe_secret(SecretId=secret_id)
        if not isinstance(body.get("ARN"), str) or not isinstance(body.get("Name"), str):
            # botocore reads an unparseable 200 (a proxy's HTML page) as an empty answer
            raise AwsCallError("DescribeSecret", "MalformedResponse", "the answer names no secret (ARN, Name)")
        return SecretDescription.from_api(body)

    def get_string(self, secret_id: str, *, stage: str | None, version_id: str | None = None) -> str | None:
        """The SecretString of the version with `stage` (and `version_id`), or None when that version has no value.

        `stage` may be None only with a `version_id`: an unlabelled version has no stage to name.
        """
        if stage is None and not version_id:
            raise ValueError("a read names a VersionStage, a VersionId, or both")
        kwargs: dict[str, Any] = {"SecretId": secret_id}
        if stage is not None:
            kwargs["VersionStage"] = stage
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            response = self._client.get_secret_value(**kwargs)
        except ClientError as exc:
            if error_code(exc) == _NOT_FOUND:
                return None
            raise as_call_error("GetSecretValue", exc) from exc
        except BotoCoreError as exc:
            raise AwsCallError("GetSecretValue", type(exc).__name__, "request did not complete") from exc
        value = response.get("SecretString")
        return value if isinstance(value, str) else None

    def put_pending(self, secret_id: str, token: str, value: str, *, rotation_token: str | None = None) -> None:
        """Store `value` as the AWSPENDING version `token`. Repeating the same call is a no-op on AWS."""
        kwargs: dict[str, Any] = {
            "SecretId": secret_id,
            "ClientRequestToken": token,
            "SecretString": value,
            "VersionStages": ["AWSPENDING"],
        }
        if rotation_token:
            kwargs["RotationToken"] = rotation_token
        with aws_errors("PutSecretValue"):
            self._client.put_secret_value(**kwargs)

    def move_stage(self, secret_id: str, stage: str, *, to_version: str, from_version: str | None) -> None:
        """Attach `stage` to `to_version`, taking it from `from_version` (required by AWS when another holds it)."""
        kwargs: dict[str, Any] = {"SecretId": secret_id, "VersionStage": stage, "MoveToVersionId": to_version}
        if from_version and from_version != to_version:
            kwargs["RemoveFromVersionId"] = from_version
        with aws_errors("UpdateSecretVersionStage"):
            self._client.update_secret_version_stage(**kwargs)

    def remove_stage(self, secret_id: str, stage: str, *, from_version: str) -> None:
        with aws_errors("UpdateSecretVersionStage"):
            self._client.update_secret_version_stage(
                SecretId=secret_id, VersionStage=stage, RemoveFromVersionId=from_version
            )

    def tag(self, secret_id: str, tags: list[dict[str, str]]) -> None:
        """Add or overwrite tags on the secret (TagResource)."""
        with aws_errors("TagResource"):
            self._client.tag_resource(SecretId=secret_id, Tags=tags)

    def iter_versions(self, secret_id: str) -> Iterator[Mapping[str, Any]]:
        """ListSecretVersionIds entries, unlabelled (deprecated) versions included, across pages."""
        kwargs: dict[str, Any] = {"SecretId": secret_id, "IncludeDeprecated": True}
        with aws_errors("ListSecretVersionIds"):
            while True:
                page = self._client.list_secret_version_ids(**kwargs)
                yield from page.get("Versions", [])
                token = page.get("NextToken")
                if not token or token == kwargs.get("NextToken"):
                    return
                kwargs["NextToken"] = token

    def iter_tagged(self, filters: list[dict[str, Any]]) -> Iterator[Mapping[str, Any]]:
        """ListSecrets entries matching `filters` (tag-key / tag-value), across pages."""
        with aws_errors("ListSecrets"):
            paginator = self._client.get_paginator("list_secrets")
            for page in paginator.paginate(Filters=filters, IncludePlannedDeletion=False):
                yield from page.get("SecretList", [])
