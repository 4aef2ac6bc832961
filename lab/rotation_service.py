"""RotateSecret as Secrets Manager performs it, installed into moto's in-process backend.

moto's own RotateSecret cannot rotate a secret that has no value yet, always moves its internal default version
whatever the Lambda does, passes the secret name instead of its ARN and never retries (see moto_gaps.py). Here
the call is answered as AWS does: check the in-progress rule, record the rotation configuration, create the empty
AWSPENDING version, return at once, and run the four steps (through a rotation function looked up by ARN) in the
background with the secret ARN, the token and a RotationToken, retrying the whole rotation after a failure.

Every rotation is recorded as RotationStarted / RotationSucceeded / RotationFailed / RotationAbandoned events, the
same names Secrets Manager sends to CloudTrail and EventBridge.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.secretsmanager import models as sm_models
from moto.secretsmanager.exceptions import InvalidRequestException, ResourceNotFoundException

from keyrot.rotation.events import STEP_NAMES

Invoke = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class RotationEvent:
    name: str  # RotationStarted, RotationSucceeded, RotationFailed, RotationAbandoned
    secret_arn: str
    token: str
    at: float
    step: str | None = None
    error: str | None = None


@dataclass
class RotationService:
    """The emulated service: rotation functions by ARN, retry policy, and what happened."""

    functions: dict[str, Invoke] = field(default_factory=dict)
    attempts: int = 3  # Secrets Manager retries a failed rotation "multiple times"
    retry_delay_seconds: float = 0.0
    synchronous: bool = False  # True: RotateSecret returns only when the rotation has finished
    events: list[RotationEvent] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, function_arn: str, invoke: Invoke) -> None:
        self.functions[function_arn] = invoke

    def wait(self, timeout: float = 60.0) -> None:
        """Wait for every background rotation started so far."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def events_for(self, secret_arn: str) -> list[RotationEvent]:
        with self._lock:
            return [event for event in self.events if event.secret_arn == secret_arn]

    def _record(self, event: RotationEvent) -> None:
        with self._lock:
            self.events.append(event)

    # --- the API -----------------------------------------------------------------------------------

    def rotate_secret(
        self,
        backend: Any,
        secret_id: str,
        client_request_token: str | None = None,
        rotation_lambda_arn: str | None = None,
        rotation_rules: dict[str, Any] | None = None,
        rotate_immediately: bool = True,
    ) -> str:
        if secret_id not in backend.secrets:
            raise ResourceNotFoundException("Secrets Manager can't find the specified secret.")
        secret = backend.secrets[secret_id]
        if secret.is_deleted():
            raise InvalidRequestException(
                "You can't perform this operation on the secret because it was marked for deletion."
            )
        function_arn = rotation_lambda_arn or secret.rotation_lambda_arn
        if not function_arn:
            raise InvalidRequestException("No Lambda rotation function ARN is associated with this secret.")
        if function_arn not in self.functions:
            raise ResourceNotFoundException(f"Resource not found for ARN '{function_arn}'.")
        for version_id, version in secret.versions.items():
            stages = version["version_stages"]
            if "AWSPENDING" in stages and "AWSCURRENT" not in stages and version_id != client_request_token:
                raise InvalidRequestException("A previous rotation isn't complete. That rotation will be reattempted.")
        secret.rotation_requested = True
        secret.rotation_lambda_arn = function_arn
        if rotation_rules:
            secret.auto_rotate_after_days = int(rotation_rules.get("AutomaticallyAfterDays") or 0)
        secret.rotation_enabled = True
        token = client_request_token or str(uuid.uuid4())
        if token not in secret.versions:
            secret.remove_version_stages_from_old_versions(["AWSPENDING"])
            version: dict[str, Any] = {
                "createdate": int(time.time()),
                "version_id": token,
                "version_stages": ["AWSPENDING"],
            }
            if not rotate_immediately:
                current = next((v for v in secret.versions.values() if "AWSCURRENT" in v["version_stages"]), None)
                if current and "secret_string" in current:
                    version["secret_string"] = current["secret_string"]
            secret.versions[token] = version
        secret.last_rotation_date = int(time.time())
        steps = STEP_NAMES if rotate_immediately else ("testSecret",)
        run = threading.Thread(
            target=self._run,
            args=(backend, secret.arn, token, self.functions[function_arn], steps, rotate_immediately),
            name=f"rotation-{token[:8]}",
            daemon=True,
        )
        self._threads.append(run)
        run.start()
        if self.synchronous:
            run.join()
        return json.dumps({"ARN": secret.arn, "Name": secret.name, "VersionId": token})

    # --- the background rotation ------------------------------------------------------------------

    def _run(
        self, backend: Any, arn: str, token: str, invoke: Invoke, steps: tuple[str, ...], rotate_immediately: bool
    ) -> None:
        self._record(RotationEvent("RotationStarted", arn, token, time.time()))
        for attempt in range(1, self.attempts + 1):
            failed_step, error = self._attempt(arn, token, invoke, steps)
            if failed_step is None:
                if not rotate_immediately:
                    backend.secrets[arn].remove_version_stages_from_old_versions(["AWSPENDING"])
                self._record(RotationEvent("RotationSucceeded", arn, token, time.time()))
                return
            self._record(RotationEvent("RotationFailed", arn, token, time.time(), step=failed_step, error=error))
            if self._abandoned(backend, arn, token):
                self._record(RotationEvent("RotationAbandoned", arn, token, time.time()))
                return
            if attempt < self.attempts and self.retry_delay_seconds:
                time.sleep(self.retry_delay_seconds)

    @staticmethod
    def _attempt(arn: str, token: str, invoke: Invoke, steps: tuple[str, ...]) -> tuple[str | None, str | None]:
        for step in steps:
            event = {"Step": step, "SecretId": arn, "ClientRequestToken": token, "RotationToken": str(uuid.uuid4())}
            try:
                invoke(event)
            except Exception as exc:  # noqa: BLE001 - a failed step is an outcome the service records
                return step, f"{type(exc).__name__}: {exc}"
        return None, None

    @staticmethod
    def _abandoned(backend: Any, arn: str, token: str) -> bool:
        """A value put outside the rotation (AWSCURRENT moved away, AWSPENDING gone) abandons it."""
        version = backend.secrets[arn].versions.get(token)
        return version is None or "AWSPENDING" not in version["version_stages"]


@contextmanager
def installed(service: RotationService) -> Iterator[RotationService]:
    """Answer RotateSecret with `service` while the block runs (in-process moto: mock_aws or ThreadedMotoServer)."""
    original = sm_models.SecretsManagerBackend.rotate_secret

    def rotate_secret(backend: Any, *args: Any, **kwargs: Any) -> str:
        return service.rotate_secret(backend, *args, **kwargs)

    sm_models.SecretsManagerBackend.rotate_secret = rotate_secret  # type: ignore[method-assign]
    try:
        yield service
    finally:
        service.wait(timeout=10)
        sm_models.SecretsManagerBackend.rotate_secret = original  # type: ignore[method-assign]
