"""What the guardrails function needs from its configuration: where the admin key and the declared state are.

The project id and the digest of the declared document come from the function's configuration, which only the
deployment changes: never from the SSM parameter or the invocation's input, which others might be able to write.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from keyrot.constants import (
    ENV_GUARDRAILS_PARAMETER,
    ENV_GUARDRAILS_SHA256,
    ENV_GUARDRAILS_STATE_PARAMETER,
    ENV_PROJECT_ID,
    ENV_RUNBOOK_URL,
    ENV_TOPIC_ARN,
)
from keyrot.errors import ConfigurationError
from keyrot.settings import DEFAULT_RUNBOOK_URL, RotationSettings

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PARAMETER = re.compile(r"^/[A-Za-z0-9_.\-/]{1,1010}$")
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")


@dataclass(frozen=True)
class GuardrailsSettings:
    """The environment, its admin-key secret, its OpenAI project, and the declared guardrails' parameter and digest
    (both None when the deployment declares no guardrails). `topic_arn` is the on-call topic the check notifies
    (None: drift is told by the metric and its alarm only) and `state_parameter` where it remembers what it told."""

    environment: str
    admin_secret_arn: str
    project_id: str
    openai_base_url: str
    parameter_name: str | None = None
    declared_digest: str | None = None
    topic_arn: str | None = None
    state_parameter: str | None = None
    runbook_url: str = DEFAULT_RUNBOOK_URL

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
        topic, state = _oncall(env)
        return cls(
            environment=common.environment,
            admin_secret_arn=common.admin_secret_arn,
            project_id=common.project_id,
            openai_base_url=common.openai_base_url,
            parameter_name=parameter,
            declared_digest=digest,
            topic_arn=topic,
            state_parameter=state,
            runbook_url=env.get(ENV_RUNBOOK_URL, "").strip() or DEFAULT_RUNBOOK_URL,
        )


def _oncall(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The on-call topic and the state parameter: both or neither (without the state, every check would notify)."""
    topic = env.get(ENV_TOPIC_ARN, "").strip() or None
    state = env.get(ENV_GUARDRAILS_STATE_PARAMETER, "").strip() or None
    if topic is not None and not _TOPIC_ARN.fullmatch(topic):
        raise ConfigurationError(f"{ENV_TOPIC_ARN} must be an SNS topic ARN, got {topic[:80]!r}")
    if state is not None and not _PARAMETER.fullmatch(state):
        raise ConfigurationError(f"{ENV_GUARDRAILS_STATE_PARAMETER} must be an SSM parameter name starting with '/'")
    if topic is not None and state is None:
        raise ConfigurationError(
            f"{ENV_TOPIC_ARN} is set without {ENV_GUARDRAILS_STATE_PARAMETER}: the check remembers there what it "
            "told on-call, and without it would notify the same drift on every check"
        )
    return topic, state
