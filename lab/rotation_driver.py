"""Drive a rotation the way Secrets Manager does, instead of trusting moto's RotateSecret orchestration.

Secrets Manager creates the empty AWSPENDING version first, then invokes the function synchronously for each
step with the secret ARN and the same token, and on failure retries the whole rotation with the same token.
It refuses a new rotation while AWSPENDING sits on a version other than AWSCURRENT.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keyrot.rotation.events import STEP_NAMES
from lab.moto_gaps import create_pending_placeholder

Invoke = Callable[[dict[str, Any]], Any]


class RotationInProgressError(RuntimeError):
    """What RotateSecret answers while an earlier rotation still holds AWSPENDING."""


@dataclass
class RotationRun:
    token: str
    attempts: int = 0
    succeeded: bool = False
    failures: list[tuple[str, BaseException]] = field(default_factory=list)
    invocations: list[str] = field(default_factory=list)


class RotationDriver:
    """Rotates one secret at a time through `invoke` (the handler, or a wrapper that injects crashes)."""

    def __init__(self, client: Any, invoke: Invoke, *, rotation_token: bool = True) -> None:
        self._client = client
        self._invoke = invoke
        self._region = client.meta.region_name
        self._rotation_token = rotation_token

    def arn(self, secret_id: str) -> str:
        return str(self._client.describe_secret(SecretId=secret_id)["ARN"])

    def start(self, secret_id: str, token: str | None = None) -> str:
        """Create the empty AWSPENDING version; refuse if an earlier rotation is unfinished."""
        description = self._client.describe_secret(SecretId=secret_id)
        token = token or str(uuid.uuid4())
        for version_id, stages in (description.get("VersionIdsToStages") or {}).items():
            if "AWSPENDING" in stages and "AWSCURRENT" not in stages and version_id != token:
                raise RotationInProgressError("A previous rotation isn't complete. That rotation will be reattempted.")
        create_pending_placeholder(self._region, description["ARN"], token)
        return token

    def step(self, secret_id: str, token: str, step: str) -> Any:
        event: dict[str, Any] = {"Step": step, "SecretId": self.arn(secret_id), "ClientRequestToken": token}
        if self._rotation_token:
            event["RotationToken"] = str(uuid.uuid4())
        return self._invoke(event)

    def rotate(self, secret_id: str, *, max_attempts: int = 3, token: str | None = None) -> RotationRun:
        """Start (or resume with `token`) and run all four steps, retrying the whole sequence on failure."""
        run = RotationRun(token=token or self.start(secret_id))
        if token:
            self.start(secret_id, token)
        while run.attempts < max_attempts and not run.succeeded:
            run.attempts += 1
            for step in STEP_NAMES:
                run.invocations.append(step)
                try:
                    self.step(secret_id, run.token, step)
                except Exception as exc:  # noqa: BLE001 - recorded; Secrets Manager retries the rotation
                    run.failures.append((step, exc))
                    break
            else:
                run.succeeded = True
        return run

    def pending_version(self, secret_id: str) -> str | None:
        stages = self._client.describe_secret(SecretId=secret_id).get("VersionIdsToStages") or {}
        return next((vid for vid, labels in stages.items() if "AWSPENDING" in labels), None)
