"""Where moto 5.2 differs from Secrets Manager in ways rotation depends on, and the minimal fixes.

See shared/notes/aws-rotation-and-moto.md, section 6. Everything here works on moto's in-process backend, which
both `mock_aws` and an in-process `ThreadedMotoServer` use.

- RotateSecret cannot start the first rotation of a secret with no versions (moto raises), and after the Lambda
  runs it moves its internal default version regardless of the outcome. Secrets Manager instead creates an empty
  AWSPENDING version first. `create_pending_placeholder` does exactly that.
- UpdateSecretVersionStage(AWSCURRENT, MoveToVersionId) on a secret that has no AWSCURRENT yet fails in moto with
  an IndexError; on AWS it attaches the label. `patched_moto` fixes that one case and leaves the rest untouched.
- RotationEnabled is only set by RotateSecret in moto; `enable_rotation` sets it as AWS's RotateSecret with
  rotation rules would.
- PutSecretValue with a ClientRequestToken whose version already holds a different value overwrites it in moto;
  AWS refuses it (ResourceExistsException), which is what makes a duplicate createSecret unable to replace the key
  another invocation stored. `patched_moto` applies AWS's rule.
- moto's backend is not thread-safe, while each AWS API call is atomic. `atomic_calls` runs each call alone, for
  tests that invoke rotation steps from many threads at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.botocore_stubber import BotocoreStubber
from moto.secretsmanager import models as sm_models
from moto.secretsmanager.exceptions import ResourceExistsException


def moto_secret(region: str, secret_id: str, account_id: str = DEFAULT_ACCOUNT_ID) -> Any:
    """moto's in-memory secret for `secret_id` (name or ARN; an ARN's own account wins over `account_id`)."""
    if secret_id.startswith("arn:"):
        account_id = secret_id.split(":")[4] or account_id
    return sm_models.secretsmanager_backends[account_id][region].secrets[secret_id]


def create_pending_placeholder(region: str, secret_id: str, token: str, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
    """Create the empty AWSPENDING version `token`, as Secrets Manager does before invoking createSecret."""
    secret = moto_secret(region, secret_id, account_id)
    if token in secret.versions:
        return
    secret.remove_version_stages_from_old_versions(["AWSPENDING"])
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}


def enable_rotation(
    region: str, secret_id: str, lambda_arn: str, days: int = 30, account_id: str = DEFAULT_ACCOUNT_ID
) -> None:
    secret = moto_secret(region, secret_id, account_id)
    secret.rotation_requested = True  # moto only describes rotation fields once this is set
    secret.rotation_enabled = True
    secret.rotation_lambda_arn = lambda_arn
    secret.auto_rotate_after_days = days


def disable_rotation(region: str, secret_id: str, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
    secret = moto_secret(region, secret_id, account_id)
    secret.rotation_enabled = False


_original_update_stage = sm_models.SecretsManagerBackend.update_secret_version_stage


def _update_secret_version_stage(
    self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
) -> tuple[str, str]:
    if version_stage == "AWSCURRENT" and not remove_from_version_id and secret_id in self.secrets:
        secret = self.secrets[secret_id]
        has_current = any("AWSCURRENT" in v["version_stages"] for v in secret.versions.values())
        if not has_current and move_to_version_id in secret.versions:
            secret.versions[move_to_version_id]["version_stages"].append("AWSCURRENT")
            secret.set_default_version_id(move_to_version_id)
            return secret.arn, secret.name
    result = _original_update_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
    if version_stage == "AWSCURRENT" and move_to_version_id:
        # Keep moto's plain reads in step with the label, as on AWS.
        self.secrets[secret_id].set_default_version_id(move_to_version_id)
    return result


_original_put_secret_value = sm_models.SecretsManagerBackend.put_secret_value


def _put_secret_value(
    self: Any, secret_id: str, secret_string: str, secret_binary: str, client_request_token: str, **kwargs: Any
) -> Any:
    secret = self.secrets[secret_id] if secret_id in self.secrets else None
    version = secret.versions.get(client_request_token) if secret is not None else None
    if version is not None and ("secret_string" in version or "secret_binary" in version):
        if (version.get("secret_string"), version.get("secret_binary")) != (secret_string, secret_binary):
            raise ResourceExistsException(
                f"You can't use ClientRequestToken {client_request_token} because that value is already in use "
                f"for a version of secret {secret.arn}."
            )
    return _original_put_secret_value(self, secret_id, secret_string, secret_binary, client_request_token, **kwargs)


@contextmanager
def patched_moto() -> Iterator[None]:
    """Apply the UpdateSecretVersionStage and PutSecretValue fixes for the duration of the block."""
    backend = sm_models.SecretsManagerBackend
    backend.update_secret_version_stage = _update_secret_version_stage  # type: ignore[method-assign]
    backend.put_secret_value = _put_secret_value  # type: ignore[method-assign]
    try:
        yield
    finally:
        backend.update_secret_version_stage = _original_update_stage  # type: ignore[method-assign]
        backend.put_secret_value = _original_put_secret_value  # type: ignore[method-assign]


@contextmanager
def atomic_calls() -> Iterator[None]:
    """Run each in-process moto call alone, as each AWS API call is atomic (moto's backend is not thread-safe)."""
    lock = threading.RLock()
    process = BotocoreStubber.process_request

    def process_request(self: Any, request: Any) -> Any:
        with lock:
            return process(self, request)

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.process_request = process  # type: ignore[method-assign]
