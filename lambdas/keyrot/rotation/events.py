"""The rotation event Secrets Manager sends, validated before anything is touched."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from keyrot.errors import RotationEventError

StepName = Literal["createSecret", "setSecret", "testSecret", "finishSecret"]
STEP_NAMES: tuple[StepName, ...] = ("createSecret", "setSecret", "testSecret", "finishSecret")
# ClientRequestToken is a version id: 32 to 64 characters (AWS uses a UUID).
_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9\-]{32,64}$")


@dataclass(frozen=True)
class RotationRequest:
    step: StepName
    secret_id: str
    token: str
    rotation_token: str | None = None

    @classmethod
    def from_event(cls, event: Any) -> RotationRequest:
        """Parse and validate. Raises RotationEventError naming the missing or malformed field."""
        if not isinstance(event, Mapping):
            raise RotationEventError(f"rotation event must be a JSON object, got {type(event).__name__}")
        missing = [name for name in ("Step", "SecretId", "ClientRequestToken") if name not in event]
        if missing:
            raise RotationEventError(f"rotation event is missing field(s): {', '.join(missing)}")
        step, secret_id, token = event["Step"], event["SecretId"], event["ClientRequestToken"]
        if step not in STEP_NAMES:
            shown = step[:40] if isinstance(step, str) else type(step).__name__
            raise RotationEventError(f"unknown rotation step {shown!r}; expected one of {', '.join(STEP_NAMES)}")
        if not isinstance(secret_id, str) or not secret_id.strip() or len(secret_id) > 2048:
            raise RotationEventError("rotation event field SecretId must be a non-empty secret ARN or name")
        if not isinstance(token, str) or not _TOKEN_PATTERN.fullmatch(token):
            raise RotationEventError("rotation event field ClientRequestToken must be a 32-64 character version id")
        rotation_token = event.get("RotationToken")
        if rotation_token is not None and (not isinstance(rotation_token, str) or not rotation_token):
            raise RotationEventError("rotation event field RotationToken must be a non-empty string when present")
        return cls(step=cast(StepName, step), secret_id=secret_id, token=token, rotation_token=rotation_token)
