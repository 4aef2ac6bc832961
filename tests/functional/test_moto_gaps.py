"""lab.moto_gaps makes moto answer as Secrets Manager does where rotation depends on it.

Each test states the AWS behaviour (../shared/notes/aws-rotation-and-moto.md and the PutSecretValue API reference)
and would fail on unpatched moto.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lab.moto_gaps import atomic_calls, create_pending_placeholder
from tests.conftest import REGION

TOKEN = "a1b2c3d4-0000-4000-8000-000000000001"


def _secret(secrets_client: Any) -> str:
    return secrets_client.create_secret(Name="keyrot/dev/gaps", SecretString='{"v": "current"}')["ARN"]


def test_put_with_a_token_whose_version_holds_another_value_is_refused(secrets_client: Any) -> None:
    # GIVEN a version stored under TOKEN
    arn = _secret(secrets_client)
    secrets_client.put_secret_value(
        SecretId=arn, ClientRequestToken=TOKEN, SecretString="first", VersionStages=["AWSPENDING"]
    )
    # WHEN another value is put with the same token THEN AWS refuses it and the stored value stands
    with pytest.raises(ClientError) as refused:
        secrets_client.put_secret_value(
            SecretId=arn, ClientRequestToken=TOKEN, SecretString="second", VersionStages=["AWSPENDING"]
        )
    assert refused.value.response["Error"]["Code"] == "ResourceExistsException"
    stored = secrets_client.get_secret_value(SecretId=arn, VersionId=TOKEN, VersionStage="AWSPENDING")
    assert stored["SecretString"] == "first"


def test_put_repeating_the_same_value_is_idempotent(secrets_client: Any) -> None:
    arn = _secret(secrets_client)
    for _ in range(2):
        secrets_client.put_secret_value(
            SecretId=arn, ClientRequestToken=TOKEN, SecretString="same", VersionStages=["AWSPENDING"]
        )
    assert secrets_client.get_secret_value(SecretId=arn, VersionStage="AWSPENDING")["SecretString"] == "same"


def test_put_into_the_empty_pending_placeholder_is_allowed(secrets_client: Any) -> None:
    # Secrets Manager creates the AWSPENDING version without a value; createSecret then fills it with the token.
    arn = _secret(secrets_client)
    create_pending_placeholder(REGION, arn, TOKEN)
    secrets_client.put_secret_value(
        SecretId=arn, ClientRequestToken=TOKEN, SecretString="minted", VersionStages=["AWSPENDING"]
    )
    assert secrets_client.get_secret_value(SecretId=arn, VersionId=TOKEN)["SecretString"] == "minted"


def test_promoting_a_version_of_a_secret_with_no_current_version_attaches_the_label(secrets_client: Any) -> None:
    # GIVEN a secret created without a value, then the first rotation's pending version, filled by createSecret
    arn = secrets_client.create_secret(Name="keyrot/dev/empty")["ARN"]
    create_pending_placeholder(REGION, arn, TOKEN)
    secrets_client.put_secret_value(
        SecretId=arn, ClientRequestToken=TOKEN, SecretString="minted", VersionStages=["AWSPENDING"]
    )
    # WHEN finishSecret moves AWSCURRENT to it THEN the label is attached (moto alone raises)
    secrets_client.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=TOKEN)
    assert secrets_client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"] == "minted"


def test_atomic_calls_keep_concurrent_puts_consistent(secrets_client: Any) -> None:
    # GIVEN eight threads racing to store different values under one token
    arn = _secret(secrets_client)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def race(index: int) -> None:
        barrier.wait()
        try:
            secrets_client.put_secret_value(
                SecretId=arn, ClientRequestToken=TOKEN, SecretString=f"value-{index}", VersionStages=["AWSPENDING"]
            )
            outcomes.append(f"value-{index}")
        except ClientError as refused:
            assert refused.response["Error"]["Code"] == "ResourceExistsException"

    with atomic_calls():
        threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # THEN exactly one wins, and the stored value is the winner's
    assert len(outcomes) == 1
    assert secrets_client.get_secret_value(SecretId=arn, VersionId=TOKEN)["SecretString"] == outcomes[0]
