"""An admin-key rotation world: moto Secrets Manager, the OpenAI stand-in, one environment's admin-key secret holding
the bootstrap key an organization owner made in the console, deployed as the infrastructure deploys it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from keyrot.admin_rotation import (
    AdminCleanup,
    AdminKeyName,
    AdminKeyValue,
    AdminRotationContext,
    build_admin_rotation_context,
    clean_up,
    run_admin_rotation_step,
)
from keyrot.admin_rotation.runner import AdminRotationTelemetry
from keyrot.aws.secrets import SecretStore
from keyrot.constants import (
    ENV_ADMIN_KEY_GRACE_SECONDS,
    ENV_ADMIN_SECRET_ARN,
    ENV_ENVIRONMENT,
    ENV_OPENAI_BASE_URL,
    ENV_PROJECT_ID,
    ENV_VALIDATION_ATTEMPTS,
    ENV_VALIDATION_DELAY_SECONDS,
    STAGE_CURRENT,
    STAGE_PENDING,
    STAGE_PREVIOUS,
    TAG_ADMIN_SECRET,
    TAG_ENVIRONMENT,
    admin_secret_name,
)
from keyrot.names import utc_now
from keyrot.openai_admin import OpenAITransport, RetryPolicy, Timeouts
from keyrot.rotation import RotationRequest
from keyrot.secret_model import AdminCredentials
from keyrot.settings import AdminRotationSettings
from lab.moto_gaps import enable_rotation
from lab.openai_standin import OpenAIStandIn
from lab.openai_standin.state import AdminKey, ManualClock
from lab.rotation_driver import RotationDriver, RotationRun
from lab.scenario import RotationWorld

FAST_RETRY = RetryPolicy(max_attempts=4, max_elapsed_seconds=30, backoff_initial_seconds=0.5)
ADMIN_ROTATION_LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:keyrot-dev-admin-rotation"


@dataclass
class AdminWorld:
    openai: OpenAIStandIn
    secrets: Any  # boto3 secretsmanager client
    environment: str
    project_id: str
    arn: str
    bootstrap_key: str = field(repr=False)
    bootstrap_key_id: str
    settings: AdminRotationSettings
    sleeps: list[float] = field(default_factory=list)
    session_factory: Callable[[], requests.Session] = requests.Session
    offset: timedelta = timedelta(0)  # how far keyrot's clock runs ahead of now (time passing, for grace periods)

    @classmethod
    def create(
        cls,
        openai: OpenAIStandIn,
        secrets: Any,
        *,
        environment: str = "dev",
        record_key_id: bool = True,
        rotation: bool = True,
        **settings: Any,
    ) -> AdminWorld:
        """The bootstrap key in the secret (with its id, as `keyrot admin-key set --key-id` records it)."""
        project_id = openai.state.add_project()
        bootstrap = openai.state.add_admin_key(name="made in the console")
        bootstrap_id = openai.state.admin_keys[bootstrap].id
        arn = secrets.create_secret(
            Name=admin_secret_name(environment),
            SecretString=AdminCredentials(bootstrap, bootstrap_id if record_key_id else None).to_json(),
            Tags=[{"Key": TAG_ENVIRONMENT, "Value": environment}, {"Key": TAG_ADMIN_SECRET, "Value": environment}],
        )["ARN"]
        if rotation:
            enable_rotation(secrets.meta.region_name, arn, ADMIN_ROTATION_LAMBDA_ARN)
        defaults: dict[str, Any] = {"validation_attempts": 3, "validation_delay_seconds": 0.01}
        admin_settings = AdminRotationSettings(
            environment=environment,
            admin_secret_arn=str(arn),
            project_id=project_id,
            openai_base_url=openai.base_url,
            **{**defaults, **settings},
        )
        return cls(openai, secrets, environment, project_id, str(arn), bootstrap, bootstrap_id, admin_settings)

    @classmethod
    def adopt(cls, world: RotationWorld, **settings: Any) -> AdminWorld:
        """The admin rotation of an application rotation world: its admin key is the bootstrap key."""
        enable_rotation(world.secrets.meta.region_name, world.admin_secret_arn, ADMIN_ROTATION_LAMBDA_ARN)
        key_id = world.openai.state.admin_keys[world.admin_key].id
        world.secrets.put_secret_value(
            SecretId=world.admin_secret_arn, SecretString=AdminCredentials(world.admin_key, key_id).to_json()
        )
        defaults: dict[str, Any] = {"validation_attempts": 3, "validation_delay_seconds": 0.01}
        admin_settings = AdminRotationSettings(
            environment=world.environment,
            admin_secret_arn=world.admin_secret_arn,
            project_id=world.project_id,
            openai_base_url=world.openai.base_url,
            **{**defaults, **settings},
        )
        return cls(
            world.openai,
            world.secrets,
            world.environment,
            world.project_id,
            world.admin_secret_arn,
            world.admin_key,
            key_id,
            admin_settings,
        )

    # --- time and settings -------------------------------------------------------------------------

    def now(self) -> datetime:
        clock = self.openai.state.clock
        base = datetime.fromtimestamp(clock(), UTC) if isinstance(clock, ManualClock) else utc_now()
        return base + self.offset

    def advance(self, seconds: float) -> None:
        """Let time pass: a stand-in on a manual clock moves with keyrot's clock; otherwise keyrot's clock runs ahead
        (OpenAI's keys keep their real creation times, so they look older)."""
        clock = self.openai.state.clock
        if isinstance(clock, ManualClock):
            clock.advance(seconds)
        else:
            self.offset += timedelta(seconds=seconds)

    def with_settings(self, **changes: Any) -> AdminWorld:
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, **changes))

    def environment_variables(self) -> dict[str, str]:
        """The admin rotation function's environment as the infrastructure sets it for this world."""
        return {
            ENV_ENVIRONMENT: self.environment,
            ENV_ADMIN_SECRET_ARN: self.arn,
            ENV_OPENAI_BASE_URL: self.settings.openai_base_url,
            ENV_PROJECT_ID: self.project_id,
            ENV_ADMIN_KEY_GRACE_SECONDS: str(self.settings.grace_period_seconds),
            ENV_VALIDATION_ATTEMPTS: str(self.settings.validation_attempts),
            ENV_VALIDATION_DELAY_SECONDS: str(self.settings.validation_delay_seconds),
        }

    # --- the engine --------------------------------------------------------------------------------

    def context(self, *, retry: RetryPolicy = FAST_RETRY) -> AdminRotationContext:
        transport = OpenAITransport(
            self.settings.openai_base_url,
            session=self.session_factory(),
            retry=retry,
            timeouts=Timeouts(connect_seconds=2, read_seconds=5),
            sleep=self.sleeps.append,
        )
        return build_admin_rotation_context(
            self.settings, self.secrets, transport=transport, sleep=self.sleeps.append, now=self.now
        )

    def invoker(self, telemetry: AdminRotationTelemetry | None = None) -> Callable[[dict[str, Any]], Any]:
        """Runs one step as the handler does, with a fresh context per invocation."""

        def invoke(event: dict[str, Any]) -> Any:
            return run_admin_rotation_step(RotationRequest.from_event(event), self.context(), telemetry)

        return invoke

    def driver(self, invoke: Callable[[dict[str, Any]], Any] | None = None) -> RotationDriver:
        return RotationDriver(self.secrets, invoke or self.invoker())

    def rotate(self) -> RotationRun:
        run = self.driver().rotate(self.arn)
        assert run.succeeded, run.failures
        return run

    def cleanup(self, **options: Any) -> AdminCleanup:
        return clean_up(self.context(), **options)

    # --- what is where -----------------------------------------------------------------------------

    def value(self, stage: str = STAGE_CURRENT) -> AdminKeyValue | None:
        text = SecretStore(self.secrets).get_string(self.arn, stage=stage)
        return AdminKeyValue.from_json(text) if text is not None else None

    def current(self) -> AdminKeyValue:
        value = self.value(STAGE_CURRENT)
        assert value is not None
        return value

    def previous(self) -> AdminKeyValue | None:
        return self.value(STAGE_PREVIOUS)

    def pending(self) -> AdminKeyValue | None:
        return self.value(STAGE_PENDING)

    def stages(self) -> dict[str, list[str]]:
        return dict(self.secrets.describe_secret(SecretId=self.arn).get("VersionIdsToStages") or {})

    def authenticates(self, value: str) -> bool:
        return self.openai.state.authenticate(value).kind == "admin"

    def admin_key(self, key_id: str) -> AdminKey:
        return next(key for key in self.openai.state.admin_keys.values() if key.id == key_id)

    def live_keyrot_keys(self) -> list[AdminKey]:
        """Live admin keys keyrot minted for this environment (names `keyrot-admin:<env>:<token>`)."""
        state = self.openai.state
        with state.lock:
            keys = list(state.admin_keys.values())
        return [
            key
            for key in keys
            if (name := AdminKeyName.parse(key.name)) is not None
            and name.environment == self.environment
            and self.authenticates(key.value)
        ]

    def probe_accounts(self) -> list[Any]:
        return [
            account
            for account in self.openai.state.live_service_accounts(self.project_id)
            if account.name.startswith("keyrot-admin-probe:")
        ]
