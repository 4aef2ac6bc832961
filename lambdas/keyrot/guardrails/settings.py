"""What the guardrails function needs from its configuration: where the admin key and the declared state are.

The project id and the digest of the declared document come from the function's configuration, which only the
deployment changes: never from the SSM parameter or the invocation's input, which others might be able to write.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from keyrot.constants import ENV_GUARDRAILS_PARAMETER, ENV_GUARDRAILS_SHA256, ENV_PROJECT_ID
from keyrot.errors import ConfigurationError
from keyrot.settings import RotationSettings

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PARAMETER = re.compile(r"^/[A-Za-z0-9_.\-/]{1,1010}$")


@dataclass(frozen=True)
class GuardrailsSettings:
    """The environment, its admin-key secret, its OpenAI project, and the declared guardrails' parameter and digest
    (both None when the deployment declares no guardrails)."""

    environment: str
    admin_secret_arn: str
    project_id: str
    openai_base_url: str
    parameter_name: str | None = None
    declared_digest: str | None = None

    @property
    def declared(self) -> bool:
        return self.declared_digest is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GuardrailsSettings:
        env = os.environ if environ is None else environ
        common = RotationSettings.from_env(env)
        if common.project_id is None:
            raise ConfigurationError(f"{ENV_PROJECT_ID} is not set: the OpenAI project whose guardrails to manage")
        parameter = env.get(ENV_GUARDRAILS_PARAMETER, "").strip() or None
        digest = env.get(ENV_GUARDRAILS_SHA256, "").strip() or None
        if parameter is not None and not _PARAMETER.fullmatch(parameter):
            raise ConfigurationError(f"{ENV_GUARDRAILS_PARAMETER} must be an SSM parameter name starting with '/'")
        if digest is not None and not _SHA256.fullmatch(digest):
            raise ConfigurationError(f"{ENV_GUARDRAILS_SHA256} must be a SHA-256 in lower-case hex (64 characters)")
        if parameter is not None and digest is None:
            raise ConfigurationError(
                f"{ENV_GUARDRAILS_PARAMETER} is set without {ENV_GUARDRAILS_SHA256}: the function trusts the "
                "declared guardrails only with the digest the deployment declared"
            )
        return cls(
            environment=common.environment,
            admin_secret_arn=common.admin_secret_arn,
            project_id=common.project_id,
            openai_base_url=common.openai_base_url,
            parameter_name=parameter,
            declared_digest=digest,
        )
