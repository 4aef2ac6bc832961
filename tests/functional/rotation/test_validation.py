"""testSecret promotes a key only on proof that it authenticates: a success, or a refusal that says it authenticated
but lacks a permission. Any other refusal, after the bounded retries, fails the step with AWSCURRENT untouched."""

from __future__ import annotations

import pytest

from keyrot.errors import KeyValidationError
from lab.openai_standin import Fault
from lab.scenario import RotationWorld


def _pending_rotation(world: RotationWorld) -> tuple[str, str, str]:
    """A secret with a working current key and a rotation through createSecret. Returns (arn, token, current id)."""
    arn = world.create_managed_secret("chat-backend")
    assert world.driver().rotate(arn).succeeded
    driver = world.driver()
    token = driver.start(arn)
    driver.step(arn, token, "createSecret")
    return arn, token, world.current(arn).key_id


@pytest.mark.parametrize(
    "refusal",
    [
        "IP 203.0.113.9 is not authorized to access this organization.",
        "You must be a member of an organization to use the API.",
        "Country, region, or territory not supported",
        "Admin API keys cannot be used for non-administration endpoints.",
    ],
)
def test_a_pending_key_refused_for_any_other_reason_is_never_promoted(world: RotationWorld, refusal: str) -> None:
    # GIVEN a pending key that OpenAI refuses with a 401 that does not say it authenticated
    arn, token, before = _pending_rotation(world)
    pending = world.pending(arn)
    assert pending is not None
    world.openai.state.keys[pending.key_id].restriction = refusal
    probes = len(world.openai.calls_to("list_models"))
    # WHEN testSecret runs
    with pytest.raises(KeyValidationError, match="does not show it authenticates") as caught:
        world.driver().step(arn, token, "testSecret")
    # THEN it failed after every attempt it is configured for, AWSCURRENT is unchanged, and the retry refuses too
    assert len(world.openai.calls_to("list_models")) - probes == world.settings.validation_attempts  # type: ignore[union-attr]
    assert "AWSCURRENT is unchanged" in str(caught.value)
    assert world.current(arn).key_id == before
    assert not world.driver().rotate(arn, token=token, max_attempts=1).succeeded
    assert world.current(arn).key_id == before


@pytest.mark.parametrize(
    "permission_refusal",
    [
        "You have insufficient permissions for this operation. Missing scopes: api.model.read.",
        "Missing scopes: api.model.read",
    ],
)
def test_a_pending_key_that_authenticates_but_lacks_a_permission_is_promoted(
    world: RotationWorld, permission_refusal: str
) -> None:
    # GIVEN a pending key restricted to scopes that exclude listing models: it authenticated
    arn, token, before = _pending_rotation(world)
    pending = world.pending(arn)
    assert pending is not None
    world.openai.state.keys[pending.key_id].restriction = permission_refusal
    # WHEN the rotation completes THEN the key is promoted
    assert world.driver().rotate(arn, token=token).succeeded
    assert world.current(arn).key_id == pending.key_id != before


def test_a_refusal_that_clears_within_the_retries_is_promoted(world: RotationWorld) -> None:
    # GIVEN OpenAI answers the first probe of the new key with a 403 that proves nothing (a transient edge refusal)
    arn, token, _ = _pending_rotation(world)
    pending = world.pending(arn)
    assert pending is not None
    first = len(world.openai.calls_to("list_models")) + 1
    world.openai.faults.add(
        Fault(
            endpoint="list_models",
            calls={first},
            status=403,
            error_type="invalid_request_error",
            message="Country, region, or territory not supported",
        )
    )
    # WHEN the rotation completes THEN the retry inside testSecret saw the key work and it was promoted
    assert world.driver().rotate(arn, token=token).succeeded
    assert world.current(arn).key_id == pending.key_id
    assert world.sleeps, "testSecret did not pause before probing again"


def test_a_pending_key_of_another_service_account_in_the_project_is_not_promoted(world: RotationWorld) -> None:
    # GIVEN a pending value rewritten to name a real key of the project whose account keyrot did not mint for it
    arn, token, before = _pending_rotation(world)
    pending = world.pending(arn)
    assert pending is not None
    account, key = world.openai.state.create_service_account(
        world.project_id, "ci-runner", with_key=True, expires_in=None
    )
    assert key is not None
    forged = pending.to_json().replace(pending.key_id, key.id).replace(pending.service_account_id, account.id)
    forged = forged.replace(pending.api_key, key.value)
    world.secrets.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    forged_token = "22222222-3333-4444-8555-666666666666"
    world.secrets.put_secret_value(
        SecretId=arn, ClientRequestToken=forged_token, SecretString=forged, VersionStages=["AWSPENDING"]
    )
    # WHEN testSecret runs for it THEN it is refused as not keyrot's, and nothing is promoted
    with pytest.raises(KeyValidationError, match="which is not keyrot's"):
        world.driver().step(arn, forged_token, "testSecret")
    assert world.current(arn).key_id == before
