"""What a secret is for comes from the deployment, not from its (writable) tags: the check every step runs first."""

from __future__ import annotations

from keyrot.aws.secrets import SecretDescription
from keyrot.constants import ENV_MANAGED_SECRETS, ENV_PROJECT_ID
from keyrot.errors import RotationStateError
from keyrot.rotation.errors import UndeclaredSecretError
from keyrot.secret_model import SecretIdentity
from keyrot.settings import RotationSettings


def declared_identity(description: SecretDescription, settings: RotationSettings) -> SecretIdentity:
    """The secret's identity, once the deployment and the tags agree on it. Raises otherwise, changing nothing.

    A deployment that declares its secrets (KEYROT_MANAGED_SECRETS) is the authority: a secret it does not list is
    refused, and so is one whose keyrot:* tags name another key, environment or project. An older deployment that
    declares nothing falls back to the tags alone.
    """
    deployment = settings.deployment
    declared = deployment.key_name_of(description.arn)
    if deployment.managed_secrets is not None and declared is None:
        raise UndeclaredSecretError(
            f"secret {description.name} is not one of the secrets this deployment manages ({ENV_MANAGED_SECRETS}); "
            "refusing to touch it"
        )
    identity = SecretIdentity.from_tags(description.tags)
    if identity.environment != settings.environment:
        raise RotationStateError(
            f"secret {description.name} belongs to environment {identity.environment!r}; this function "
            f"rotates {settings.environment!r} only"
        )
    if declared is not None and identity.key_name != declared:
        raise UndeclaredSecretError(
            f"secret {description.name} is tagged for key {identity.key_name!r} but the deployment declares it for "
            f"{declared!r} ({ENV_MANAGED_SECRETS}); refusing to touch it until they agree"
        )
    if deployment.project_id is not None and identity.project_id != deployment.project_id:
        raise UndeclaredSecretError(
            f"secret {description.name} is tagged for OpenAI project {identity.project_id} but the deployment "
            f"declares {deployment.project_id} ({ENV_PROJECT_ID}); refusing to touch it until they agree"
        )
    return identity
