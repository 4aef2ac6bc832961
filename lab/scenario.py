"""A rotation world for tests, the demo and benchmarks: moto Secrets Manager, the OpenAI stand-in, one environment.

Call inside an active moto context (`mock_aws()` or an in-process ThreadedMotoServer with patched_moto()).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from keyrot.aws.secrets import SecretStore
from keyrot.constants import (
    ENV_ADMIN_SECRET_ARN,
    ENV_ENVIRONMENT,
    ENV_GRACE_PERIOD_SECONDS,
    ENV_KEY_EXPIRY_SECONDS,
    ENV_KEY_SCOPES,
    ENV_MANAGED_SECRETS,
    ENV_MAX_GRACE_PERIOD_SECONDS,
    ENV_OPENAI_BASE_URL,
    ENV_PROJECT_ID,
    ENV_ROTATION_INTERVAL_SECONDS,
    ENV_SHARED_ENVIRONMENTS,
    STAGE_CURRENT,
    STAGE_PENDING,
    STAGE_PREVIOUS,
    TAG_ENVIRONMENT,
    TAG_KEY_NAME,
    TAG_PROJECT_ID,
)
from keyrot.openai_admin import OpenAITransport, RetryPolicy, Timeouts
from keyrot.rotation import RotationContext, RotationRequest, run_rotation_step
from keyrot.rotation.context import build_rotation_context, utc_now
from keyrot.rotation.runner import RotationTelemetry
from keyrot.secret_model import AdminCredentials, ManagedKey
from keyrot.settings import RotationSettings
from lab.moto_gaps import enable_rotation
from lab.openai_standin import OpenAIStandIn
from lab.rotation_driver import RotationDriver

FAST_RETRY = RetryPolicy(max_attempts=4, max_elapsed_seconds=30, backoff_initial_seconds=0.5)
ROTATION_LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:keyrot-dev-rotation"


@dataclass
class RotationWorld:
    openai: OpenAIStandIn
    secrets: Any  # boto3 secretsmanager client
    environment: str = "dev"
    project_id: str = ""
    admin_key: str = field(default="", repr=False)
    admin_secret_arn: str = ""
    settings: RotationSettings | None = None
    sleeps: list[float] = field(default_factory=list)
    session_factory: Callable[[], requests.Session] = requests.Session
    now: Callable[[], datetime] = utc_now

    @classmethod
    def create(
        cls,
        openai: OpenAIStandIn,
        secrets: Any,
        *,
        environment: str = "dev",
        now: Callable[[], datetime] = utc_now,
        **settings: Any,
    ) -> RotationWorld:
        world = cls(openai=openai, secrets=secrets, environment=environment, now=now)
        world.project_id = openai.state.add_project()
        world.admin_key = openai.state.add_admin_key()
        world.admin_secret_arn = secrets.create_secret(
            Name=f"keyrot/{environment}/openai-admin-key",
            SecretString=AdminCredentials(world.admin_key).to_json(),
        )["ARN"]
        # Deployed as the infrastructure deploys it: the project and the managed secrets are declared (each secret is
        # added by create_managed_secret), no other environment shares the project.
        defaults: dict[str, Any] = {
            "validation_attempts": 3,
            "validation_delay_seconds": 0.05,
            "project_id": world.project_id,
            "managed_secrets": {},
            "shared_environments": (),
        }
        world.settings = RotationSettings(
            environment=environment,
            admin_secret_arn=world.admin_secret_arn,
            openai_base_url=openai.base_url,
            **{**defaults, **settings},
        )
        return world

    # --- secrets -----------------------------------------------------------------------------------

    def create_managed_secret(
        self, key_name: str, *, tags: list[dict[str, str]] | None = None, rotation: bool = True, declare: bool = True
    ) -> str:
        """A secret as the infrastructure creates it: tagged, no value, rotation enabled, declared to the functions
        (KEYROT_MANAGED_SECRETS) unless `declare` is false."""
        if tags is None:
            tags = [
                {"Key": TAG_ENVIRONMENT, "Value": self.environment},
                {"Key": TAG_KEY_NAME, "Value": key_name},
                {"Key": TAG_PROJECT_ID, "Value": self.project_id},
            ]
        arn = self.secrets.create_secret(Name=f"keyrot/{self.environment}/{key_name}", Tags=tags)["ARN"]
        if rotation:
            enable_rotation(self.secrets.meta.region_name, arn, ROTATION_LAMBDA_ARN)
        if declare:
            self.declare(key_name, str(arn))
        return str(arn)

    def declare(self, key_name: str, arn: str) -> None:
        """Add `key_name` -> `arn` to the managed secrets this world's functions are deployed with."""
        assert self.settings is not None
        managed = {**(self.settings.managed_secrets or {}), key_name: arn}
        # The declared project follows the world's (tests point two environments at one project by assigning it).
        self.settings = dataclasses.replace(self.settings, managed_secrets=managed, project_id=self.project_id)

    def environment_variables(self) -> dict[str, str]:
        """The rotation function's environment as the infrastructure sets it for this world: KEYROT_KEY_SCOPES only
        when the world declares scopes (a stack whose keys declare none deploys without it)."""
        assert self.settings is not None
        settings = self.settings
        variables = {
            ENV_ENVIRONMENT: self.environment,
            ENV_ADMIN_SECRET_ARN: self.admin_secret_arn,
            ENV_OPENAI_BASE_URL: settings.openai_base_url,
            ENV_GRACE_PERIOD_SECONDS: str(settings.grace_period_seconds),
            ENV_MAX_GRACE_PERIOD_SECONDS: str(settings.max_grace_period_seconds),
            ENV_KEY_EXPIRY_SECONDS: str(settings.key_expiry_seconds),
            ENV_ROTATION_INTERVAL_SECONDS: str(settings.rotation_interval_seconds),
            ENV_PROJECT_ID: self.project_id,
            ENV_MANAGED_SECRETS: json.dumps(dict(settings.managed_secrets or {})),
            ENV_SHARED_ENVIRONMENTS: ",".join(settings.shared_environments or ()),
        }
        if settings.key_scopes:
            # As keyrot.pulumi.lambda_settings.key_scopes_json: only when a key declares scopes, compact, sorted.
            scoped = {name: list(scopes) for name, scopes in sorted(settings.key_scopes.items())}
            variables[ENV_KEY_SCOPES] = json.dumps(scoped, separators=(",", ":"))
        return variables

    def read(self, arn: str, stage: str = STAGE_CURRENT) -> ManagedKey | None:
        text = SecretStore(self.secrets).get_string(arn, stage=stage)
        return ManagedKey.from_json(text) if text else None

    def current(self, arn: str) -> ManagedKey:
        key = self.read(arn, STAGE_CURRENT)
        assert key is not None, "secret has no AWSCURRENT value"
        return key

    def previous(self, arn: str) -> ManagedKey | None:
        return self.read(arn, STAGE_PREVIOUS)

    def pending(self, arn: str) -> ManagedKey | None:
        return self.read(arn, STAGE_PENDING)

    def stages(self, arn: str) -> dict[str, list[str]]:
        return dict(self.secrets.describe_secret(SecretId=arn).get("VersionIdsToStages") or {})

    # --- rotation ----------------------------------------------------------------------------------

    def with_settings(self, **changes: Any) -> RotationWorld:
        assert self.settings is not None
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, **changes))

    def context(self, *, retry: RetryPolicy = FAST_RETRY, timeouts: Timeouts | None = None) -> RotationContext:
        """A real context whose sleeps are recorded instead of slept."""
        assert self.settings is not None
        transport = OpenAITransport(
            self.settings.openai_base_url,
            session=self.session_factory(),
            retry=retry,
            timeouts=timeouts or Timeouts(connect_seconds=2, read_seconds=5),
            sleep=self.sleeps.append,
        )
        return build_rotation_context(
            self.settings, self.secrets, transport=transport, sleep=self.sleeps.append, now=self.now
        )

    def invoker(
        self, telemetry: RotationTelemetry | None = None, **context_options: Any
    ) -> Callable[[dict[str, Any]], Any]:
        """An invoke function running one step through the engine, as the handler does, with a fresh context."""

        def invoke(event: dict[str, Any]) -> Any:
            return run_rotation_step(RotationRequest.from_event(event), self.context(**context_options), telemetry)

        return invoke

    def driver(self, invoke: Callable[[dict[str, Any]], Any] | None = None) -> RotationDriver:
        return RotationDriver(self.secrets, invoke or self.invoker())

    def keyrot_accounts(self) -> list[Any]:
        """Live service accounts in the project named by keyrot."""
        return [a for a in self.openai.state.live_service_accounts(self.project_id) if a.name.startswith("keyrot:")]
