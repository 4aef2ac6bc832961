"""What every command needs: an AWS session and clients, discovery of environments, keys and admin secrets, OpenAI.

Clients are created lazily (a command that never reads logs never needs logs permissions). Discovery lists secrets
by tag and never reads a value; values are read only by the command that needs one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

from keyrot.aws.secrets import SecretDescription, SecretStore
from keyrot.cli import endpoint, output
from keyrot.cli.errors import NotFoundError, UsageError
from keyrot.constants import (
    TAG_ADMIN_SECRET,
    TAG_ENVIRONMENT,
    TAG_KEY_NAME,
    admin_secret_name,
)
from keyrot.errors import AwsCallError
from keyrot.monitor.ledger import Ledger, load_ledger
from keyrot.names import tag_map, utc_now
from keyrot.openai_admin import OpenAIAdminClient, OpenAITransport, RetryPolicy, Timeouts
from keyrot.redaction import scrub
from keyrot.rotation.context import RotationContext, build_rotation_context, load_admin_client
from keyrot.secret_model import ENVIRONMENT_PATTERN, KEY_NAME_PATTERN, SecretIdentity
from keyrot.settings import RotationSettings

logger = logging.getLogger(__name__)

# Honoured before AWS_DEFAULT_REGION and the profile, as the AWS CLI and SDKs do (botocore reads only the latter).
ENV_AWS_REGION = "AWS_REGION"

_AWS_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=30)
# Interactive commands: a few quick retries, never minutes of backoff.
CLI_RETRY = RetryPolicy(max_attempts=3, max_elapsed_seconds=20, backoff_initial_seconds=0.5, backoff_max_seconds=4)
CLI_TIMEOUTS = Timeouts(connect_seconds=5, read_seconds=30)


def new_session(profile: str | None, region: str | None) -> Any:
    """A boto3 session on the standard credential chain (tests wrap this to add botocore event hooks)."""
    return boto3.session.Session(profile_name=profile, region_name=region)


@dataclass(frozen=True)
class CliOptions:
    """What the operator gave on the command line (None: not given, the environment or a default decides)."""

    profile: str | None = None
    region: str | None = None
    openai_base_url: str | None = None
    debug: bool = False


@dataclass(frozen=True)
class KeyTarget:
    """One managed secret, found by its tags."""

    arn: str
    name: str
    identity: SecretIdentity
    description: SecretDescription

    @property
    def environment(self) -> str:
        return self.identity.environment

    @property
    def key_name(self) -> str:
        return self.identity.key_name


def check_environment(environment: str) -> str:
    if not ENVIRONMENT_PATTERN.fullmatch(environment):
        shown = scrub(repr(environment[:40]))
        raise UsageError(f"--env {shown} is not a valid environment name (lowercase, digits, '-')")
    return environment


def check_key_name(key_name: str) -> str:
    if not KEY_NAME_PATTERN.fullmatch(key_name):
        raise UsageError(f"--key {scrub(repr(key_name[:70]))} is not a valid key name (lowercase, digits, '-')")
    return key_name


@dataclass
class CliContext:
    """The one object every command gets: the options, the AWS session and clients, discovery and OpenAI access."""

    options: CliOptions = field(default_factory=CliOptions)
    _session: Any = field(default=None, init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _warned: bool = field(default=False, init=False, repr=False)

    def with_options(self, **given: Any) -> CliContext:
        """A fresh context with these options changed (a command's --region beats the global one)."""
        return CliContext(replace(self.options, **given))

    def check(self) -> None:
        """Fail on a bad option value before the command reads or changes anything (UsageError)."""
        _ = self.openai_base_url

    @cached_property
    def openai_base_url(self) -> str:
        """--openai-base-url, else $KEYROT_OPENAI_ADMIN_BASE_URL, else OpenAI's API (never $OPENAI_BASE_URL)."""
        return endpoint.resolve(self.options.openai_base_url, os.environ)

    # --- AWS ----------------------------------------------------------------------------------------

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = new_session(self.options.profile, self.aws_region)
            logger.debug("AWS session: profile %s, region %s", self._session.profile_name, self._session.region_name)
        return self._session

    @property
    def aws_region(self) -> str | None:
        """--region, else $AWS_REGION; None leaves it to botocore ($AWS_DEFAULT_REGION, then the profile's)."""
        return self.options.region or os.environ.get(ENV_AWS_REGION, "").strip() or None

    @property
    def region(self) -> str:
        """The region in use (raises NoRegionError through the client when none is configured)."""
        return str(self.client("secretsmanager").meta.region_name)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = created = self.session.client(service, config=_AWS_CONFIG)
            logger.debug("AWS %s client: endpoint %s", service, created.meta.endpoint_url)
        return self._clients[service]

    @property
    def secrets(self) -> Any:
        return self.client("secretsmanager")

    @property
    def store(self) -> SecretStore:
        return SecretStore(self.secrets)

    def now(self) -> datetime:
        return utc_now()

    # --- discovery -------------------------------------------------------------------------------------

    def environments(self) -> list[str]:
        """Every environment with a secret tagged keyrot:environment in this account and region."""
        found = set()
        for listed in self.store.iter_tagged([{"Key": "tag-key", "Values": [TAG_ENVIRONMENT]}]):
            tags = _tags(listed)
            if TAG_ADMIN_SECRET not in tags:  # an environment is its managed keys, not its admin-key secret
                found.add(tags.get(TAG_ENVIRONMENT, ""))
        return sorted(env for env in found if env)

    def tagged(self, environment: str) -> list[Mapping[str, Any]]:
        """The managed secrets (not the admin-key secret) of `environment`; NotFoundError when it has none."""
        filters = [{"Key": "tag-key", "Values": [TAG_ENVIRONMENT]}, {"Key": "tag-value", "Values": [environment]}]
        listed = [
            entry for entry in self.store.iter_tagged(filters) if _tags(entry).get(TAG_ENVIRONMENT) == environment
        ]
        managed = [entry for entry in listed if TAG_ADMIN_SECRET not in _tags(entry)]
        if not managed:
            raise NotFoundError(self.no_environment(environment))
        return managed

    def no_environment(self, environment: str) -> str:
        return (
            f"no keyrot secrets tagged {TAG_ENVIRONMENT}={environment} in region {self.region}: "
            "check --env, --region and --profile"
        )

    def ledger(self, environment: str) -> Ledger:
        self.tagged(environment)  # unknown environment: exit 4 rather than an empty table
        return load_ledger(self.store, environment)

    def key(self, environment: str, key_name: str) -> KeyTarget:
        """The secret of `key_name` in `environment`, described (labels and tags, never values)."""
        managed = self.tagged(check_environment(environment))
        match = [entry for entry in managed if _tags(entry).get(TAG_KEY_NAME) == check_key_name(key_name)]
        if not match:
            known = sorted(_tags(entry).get(TAG_KEY_NAME, "?") for entry in managed)
            raise NotFoundError(
                f"no key {key_name!r} in environment {environment} (region {self.region}); "
                f"known keys: {', '.join(known)}"
            )
        description = self.store.describe(match[0]["ARN"])
        identity = SecretIdentity.from_tags(description.tags)
        return KeyTarget(description.arn, description.name, identity, description)

    def admin_secret_arn(self, environment: str) -> str:
        """The admin-key secret: tagged keyrot:admin-key=<env>, else named keyrot/<env>/openai-admin-key."""
        filters = [{"Key": "tag-key", "Values": [TAG_ADMIN_SECRET]}, {"Key": "tag-value", "Values": [environment]}]
        for entry in self.store.iter_tagged(filters):
            if _tags(entry).get(TAG_ADMIN_SECRET) == environment:
                return str(entry["ARN"])
        name = admin_secret_name(environment)
        try:
            return self.store.describe(name).arn
        except AwsCallError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
        raise NotFoundError(
            f"no admin-key secret for environment {environment} in region {self.region} (neither tagged "
            f"{TAG_ADMIN_SECRET}={environment} nor named {name}): deploy the stack first (pulumi up)"
        )

    # --- OpenAI ----------------------------------------------------------------------------------------

    def transport(self, retry: RetryPolicy = CLI_RETRY) -> OpenAITransport:
        """The OpenAI transport; the first one of a command warns when the endpoint is not OpenAI's."""
        logger.debug("OpenAI API: %s", self.openai_base_url)
        if not self._warned and (warning := endpoint.foreign_host_warning(self.openai_base_url)):
            self._warned = True
            output.note(warning)
        return OpenAITransport(self.openai_base_url, retry=retry, timeouts=CLI_TIMEOUTS)

    def rotation_settings(self, environment: str, **changes: Any) -> RotationSettings:
        return RotationSettings(
            environment=environment,
            admin_secret_arn=self.admin_secret_arn(environment),
            openai_base_url=self.openai_base_url,
            **changes,
        )

    def admin_client(self, environment: str) -> OpenAIAdminClient:
        """An admin client holding the environment's admin key (AdminKeyError when the secret holds none)."""
        return load_admin_client(self.store, self.rotation_settings(environment), self.transport())

    def rotation_context(self, environment: str, **changes: Any) -> RotationContext:
        """The rotation engine's context, as the Lambda builds it, for revocation run from this machine."""
        settings = self.rotation_settings(environment, **changes)
        return build_rotation_context(settings, self.secrets, transport=self.transport())


def _tags(entry: Mapping[str, Any]) -> dict[str, str]:
    return tag_map(entry.get("Tags"))
