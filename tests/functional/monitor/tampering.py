"""States a key can be left in that no ordinary rotation leaves it in: the labels say one thing, OpenAI another.

Someone with `secretsmanager:UpdateSecretVersionStage` (an operator's slip, a half-finished manual cleanup, a crash
between two writes) moves a label without revoking anything. The inventory must not take the labels on their word.
"""

from __future__ import annotations

from typing import Any

from keyrot.constants import STAGE_PREVIOUS, STAGE_REVOKED


def previous_version(secrets: Any, arn: str) -> str:
    stages = secrets.describe_secret(SecretId=arn).get("VersionIdsToStages") or {}
    return next(version for version, labels in stages.items() if STAGE_PREVIOUS in labels)


def unlabel_previous(secrets: Any, arn: str) -> str:
    """Take AWSPREVIOUS off its version, revoking nothing: its key is displaced (no label accounts for it)."""
    version = previous_version(secrets, arn)
    secrets.update_secret_version_stage(SecretId=arn, VersionStage=STAGE_PREVIOUS, RemoveFromVersionId=version)
    return version


def label_previous_revoked(secrets: Any, arn: str) -> str:
    """Put KEYROT_REVOKED on the AWSPREVIOUS version, revoking nothing: labelled revoked, still live at OpenAI."""
    version = previous_version(secrets, arn)
    secrets.update_secret_version_stage(SecretId=arn, VersionStage=STAGE_REVOKED, MoveToVersionId=version)
    return version
