"""KeyProvider's region: keyrot's typed error naming every way to set one, and AWS_REGION honoured as the SDKs do.

The application developer who deploys to a container that sets only AWS_REGION (or nothing) must get either the
right region or an error that says what to set, never botocore's NoRegionError at the first request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyrot.client import KeyProvider
from keyrot.client.region import resolve_region
from keyrot.errors import ConfigurationError
from keyrot.secret_model import ManagedKey

NAME = "keyrot/dev/chat-backend"
KEY = ManagedKey(
    api_key="sk-fake-region-test-0001",
    key_id="key_regionTest",
    service_account_id="svc_acct_regionTest",
    project_id="proj_regionTest",
    environment="dev",
    key_name="chat-backend",
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)


@pytest.fixture
def no_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No region anywhere: no variables, and an AWS config file without one. Returns that config file."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    config = tmp_path / "config"
    config.write_text("[default]\noutput = json\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return config


def _secret_in(region: str) -> str:
    client = boto3.client("secretsmanager", region_name=region)
    return str(client.create_secret(Name=NAME, SecretString=KEY.to_json())["ARN"])


def test_no_region_anywhere_is_keyrots_typed_error_naming_each_way_to_set_one(no_region: Path) -> None:
    # WHEN an application builds a provider where no region is configured
    with pytest.raises(ConfigurationError) as caught:
        KeyProvider(NAME)
    # THEN the error names the argument, both variables and the ARN (not botocore's NoRegionError)
    message = str(caught.value)
    assert all(word in message for word in ("region_name", "AWS_REGION", "AWS_DEFAULT_REGION", "ARN", NAME))


def test_aws_region_alone_is_honoured(no_region: Path, monkeypatch: pytest.MonkeyPatch, aws: None) -> None:
    # GIVEN the secret in eu-west-1 and only AWS_REGION set (as some runtimes do)
    _secret_in("eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    # WHEN the provider reads it by name
    provider = KeyProvider(NAME)
    # THEN it reads in that region
    assert provider() == KEY.api_key and provider.region_name == "eu-west-1"


def test_aws_region_wins_over_aws_default_region(no_region: Path, monkeypatch: pytest.MonkeyPatch, aws: None) -> None:
    # GIVEN both variables set to different regions and the secret in AWS_REGION's
    _secret_in("eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # WHEN the provider reads it
    # THEN AWS_REGION decided, as in the AWS SDKs and the AWS CLI
    assert KeyProvider(NAME)() == KEY.api_key


def test_a_secret_arn_carries_its_own_region(no_region: Path, aws: None) -> None:
    # GIVEN no region configured, and the secret's full ARN
    arn = _secret_in("ap-southeast-2")
    # WHEN the provider reads by ARN
    provider = KeyProvider(arn)
    # THEN it reads in the ARN's region
    assert provider() == KEY.api_key and provider.region_name == "ap-southeast-2"


def test_the_profile_region_is_used_when_no_variable_is_set(no_region: Path) -> None:
    # GIVEN a region only in the AWS config file's default profile
    no_region.write_text("[default]\nregion = eu-central-1\n")
    # WHEN a provider is built by name
    # THEN it takes that region
    assert KeyProvider(NAME).region_name == "eu-central-1"


def test_a_malformed_region_is_refused_naming_where_it_came_from(
    no_region: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN AWS_REGION with a typo an operator could make
    monkeypatch.setenv("AWS_REGION", "eu west 1")
    # WHEN a provider is built
    # THEN keyrot's typed error names the variable and the value
    with pytest.raises(ConfigurationError, match="AWS_REGION gives 'eu west 1'"):
        KeyProvider(NAME)


def test_a_missing_profile_is_keyrots_typed_error(no_region: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN AWS_PROFILE naming a profile that does not exist, and no region variable
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    # WHEN a provider is built
    # THEN the error is keyrot's and names the profile problem
    with pytest.raises(ConfigurationError, match="no-such-profile"):
        KeyProvider(NAME)


def test_an_injected_client_needs_no_region(no_region: Path) -> None:
    # GIVEN an application passing its own Secrets Manager client
    client: Any = object()
    # WHEN it builds a provider with no region configured anywhere
    # THEN that is fine: the client knows its region
    assert KeyProvider(NAME, client=client).region_name is None


REGIONS = st.sampled_from(["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1"])
SOURCES = ("argument", "arn", "AWS_REGION", "AWS_DEFAULT_REGION", "profile")


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    given_regions=st.fixed_dictionaries({}, optional={source: REGIONS for source in SOURCES}),
)
def test_the_first_source_present_decides_the_region(no_region: Path, given_regions: dict[str, str]) -> None:
    # GIVEN any combination of the five places a region can come from
    no_region.write_text(f"[default]\nregion = {given_regions['profile']}\n" if "profile" in given_regions else "")
    arn_region = given_regions.get("arn")
    secret_id = f"arn:aws:secretsmanager:{arn_region}:123456789012:secret:{NAME}-AbCdEf" if arn_region else NAME
    environ = {name: given_regions[name] for name in ("AWS_REGION", "AWS_DEFAULT_REGION") if name in given_regions}
    # WHEN the region is resolved
    present = [given_regions[source] for source in SOURCES if source in given_regions]
    if not present:
        with pytest.raises(ConfigurationError):
            resolve_region(secret_id, given_regions.get("argument"), environ)
        return
    # THEN it is the first present in the order argument, ARN, AWS_REGION, AWS_DEFAULT_REGION, profile
    assert resolve_region(secret_id, given_regions.get("argument"), environ) == present[0]
