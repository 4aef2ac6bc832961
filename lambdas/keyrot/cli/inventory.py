"""The inventory of an environment as the CLI reads it: the same keyrot.inventory answer the functions get.

`status`, `audit` and `doctor` ask this module what each key is; none derives it. The secrets are the environment's
managed secrets as the CLI finds them: by their `keyrot:environment` tag, the fallback the functions themselves use
when their deployment declares no secrets. (The deployment's declaration, KEYROT_MANAGED_SECRETS and
KEYROT_SHARED_ENVIRONMENTS, lives in the functions' configuration, which the operator's policy in docs/cli.md does
not read; so the CLI treats every other keyrot environment's keys as that environment's, as an undeclared
deployment's functions do.) What OpenAI lists comes from each project the secrets name, through the admin key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from keyrot.cli.context import CliContext
from keyrot.cli.errors import classify as classify_error
from keyrot.errors import KeyrotError
from keyrot.inventory import (
    Inventory,
    OpenAIListing,
    SecretInventory,
    SecretRecord,
    add_unlabelled_versions,
    classify,
    read_openai,
    read_secrets,
)
from keyrot.openai_admin import OpenAIAdminClient, ProjectApiKey, ServiceAccount
from keyrot.settings import Deployment

# The grace period the CLI assumes where it does not ask (status): the functions' default (24 h).
DEFAULT_GRACE_PERIOD_SECONDS = 24 * 3600


@dataclass(frozen=True)
class EnvironmentInventory:
    """One environment's inventory, with what the CLI shows beside it (OpenAI's own listing, by project)."""

    inventory: Inventory
    projects: tuple[str, ...]
    keys: Mapping[str, ProjectApiKey] = field(default_factory=dict)  # OpenAI's project keys by id (empty: not read)
    project_of: Mapping[str, str] = field(default_factory=dict)  # service account or key id -> its project
    openai_error: str | None = None  # why OpenAI was not read (then no key is confirmed revoked)

    @property
    def openai_read(self) -> bool:
        return self.openai_error is None

    def secret(self, key_name: str) -> SecretInventory | None:
        return self.inventory.secret(key_name)

    @property
    def readable_secrets(self) -> list[SecretInventory]:
        """The secrets that could be read (the others are listed in `inventory.problems`)."""
        return [secret for secret in self.inventory.secrets if secret.record.problem is None]


def deployment(cli: CliContext, environment: str) -> Deployment:
    """What the CLI knows the deployment declares: nothing (the secrets are found by tag; see the module docstring).
    An unknown environment raises NotFoundError (exit 4) rather than showing an empty inventory."""
    cli.tagged(environment)
    return Deployment()


def load(
    cli: CliContext, environment: str, *, grace_period_seconds: int, admin: OpenAIAdminClient | None
) -> EnvironmentInventory:
    """The environment's inventory; `admin` None: without OpenAI's listing (no key is then confirmed revoked)."""
    declared = deployment(cli, environment)
    records = read_secrets(cli.store, environment, declared)
    projects = tuple(sorted({record.project_id for record in records if record.project_id}))
    if admin is None:
        inventory = _classify(records, None, environment, declared, cli, grace_period_seconds)
        return EnvironmentInventory(inventory, projects)
    listing, project_of = _listing(admin, projects)
    records = add_unlabelled_versions(cli.store, records, listing, environment)
    inventory = _classify(records, listing, environment, declared, cli, grace_period_seconds)
    keys = {key.id: key for key in listing.keys or ()}
    return EnvironmentInventory(inventory, projects, keys, project_of)


def load_best_effort(cli: CliContext, environment: str, *, grace_period_seconds: int) -> EnvironmentInventory:
    """`load` with OpenAI's listing when the admin key can be read and OpenAI answers; otherwise without it, saying
    why (an operator without access to the admin key still sees every key, unconfirmed)."""
    try:
        admin = cli.admin_client(environment)
        return load(cli, environment, grace_period_seconds=grace_period_seconds, admin=admin)
    except KeyrotError as exc:
        found = classify_error(exc)
        reason = found[1] if found else f"{type(exc).__name__}: {exc}"
    unread = load(cli, environment, grace_period_seconds=grace_period_seconds, admin=None)
    return EnvironmentInventory(unread.inventory, unread.projects, openai_error=reason)


def _listing(admin: OpenAIAdminClient, projects: tuple[str, ...]) -> tuple[OpenAIListing, dict[str, str]]:
    """Service accounts and keys of every project, and which project each is in."""
    accounts: list[ServiceAccount] = []
    keys: list[ProjectApiKey] = []
    project_of: dict[str, str] = {}
    for project in projects:
        listed = read_openai(admin, [project])
        for account in listed.accounts or ():
            accounts.append(account)
            project_of[account.id] = project
        for key in listed.keys or ():
            keys.append(key)
            project_of[key.id] = project
            if key.owner_type == "service_account" and key.owner_id:
                project_of.setdefault(key.owner_id, project)
    return OpenAIListing.of(accounts, keys), project_of


def _classify(
    records: list[SecretRecord],
    listing: OpenAIListing | None,
    environment: str,
    declared: Deployment,
    cli: CliContext,
    grace_period_seconds: int,
) -> Inventory:
    return classify(
        records,
        listing,
        environment=environment,
        shared_environments=declared.shared_environments,
        now=cli.now(),
        grace_period_seconds=grace_period_seconds,
    )
