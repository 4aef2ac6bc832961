"""Rotation events are validated before anything is touched; the guard mirrors AWS's rotation template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keyrot.aws.secrets import SecretDescription
from keyrot.errors import RotationEventError, RotationStateError
from keyrot.rotation.events import RotationRequest
from keyrot.rotation.guard import GuardDecision, check_version_stage
from keyrot.rotation.naming import ServiceAccountName

EVENTS = Path(__file__).resolve().parents[1] / "events"
TOKEN = "7b0e9c3e-4a0c-4a0e-9a41-4d1b2b7c9f10"


@pytest.mark.parametrize("name", ["create_secret.json", "finish_secret.json"])
def test_recorded_events_parse(name: str) -> None:
    event = json.loads((EVENTS / name).read_text())
    request = RotationRequest.from_event(event)
    assert request.step == event["Step"]
    assert request.secret_id.startswith("arn:aws:secretsmanager:")
    assert request.rotation_token == event.get("RotationToken")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "must be a JSON object, got list"),
        ({"Step": "createSecret", "SecretId": "s"}, "missing field(s): ClientRequestToken"),
        ({"SecretId": "s", "ClientRequestToken": TOKEN}, "missing field(s): Step"),
        (
            {"Step": "create_secret", "SecretId": "s", "ClientRequestToken": TOKEN},
            "unknown rotation step 'create_secret'",
        ),
        ({"Step": 3, "SecretId": "s", "ClientRequestToken": TOKEN}, "unknown rotation step 'int'"),
        ({"Step": "testSecret", "SecretId": "", "ClientRequestToken": TOKEN}, "SecretId must be a non-empty"),
        ({"Step": "testSecret", "SecretId": "s", "ClientRequestToken": "short"}, "ClientRequestToken must be"),
        (
            {"Step": "testSecret", "SecretId": "s", "ClientRequestToken": TOKEN, "RotationToken": 5},
            "RotationToken must be a non-empty string",
        ),
    ],
)
def test_malformed_events_are_rejected_with_the_field_named(event: object, message: str) -> None:
    with pytest.raises(RotationEventError) as caught:
        RotationRequest.from_event(event)
    assert message in str(caught.value)


def _description(versions: dict[str, tuple[str, ...]], enabled: bool = True) -> SecretDescription:
    return SecretDescription(
        arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/dev/chat-AbCdEf",
        name="keyrot/dev/chat",
        rotation_enabled=enabled,
        rotation_lambda_arn=None,
        tags=(),
        versions=versions,
    )


def test_guard_proceeds_for_a_pending_token() -> None:
    assert check_version_stage(_description({TOKEN: ("AWSPENDING",)}), TOKEN) is GuardDecision.PROCEED


def test_guard_reports_an_already_current_token() -> None:
    description = _description({TOKEN: ("AWSCURRENT", "AWSPENDING")})
    assert check_version_stage(description, TOKEN) is GuardDecision.ALREADY_CURRENT


@pytest.mark.parametrize(
    ("versions", "enabled", "message"),
    [
        ({TOKEN: ("AWSPENDING",)}, False, "rotation is not enabled for secret keyrot/dev/chat"),
        ({"other": ("AWSCURRENT",)}, True, f"has no version {TOKEN}"),
        ({TOKEN: ("AWSPREVIOUS",)}, True, "is not AWSPENDING"),
        ({TOKEN: ()}, True, "is not AWSPENDING"),
    ],
)
def test_guard_rejects_states_a_step_may_not_act_on(
    versions: dict[str, tuple[str, ...]], enabled: bool, message: str
) -> None:
    with pytest.raises(RotationStateError, match=message):
        check_version_stage(_description(versions, enabled), TOKEN)


def test_service_account_names_round_trip_and_ignore_foreign_names() -> None:
    name = ServiceAccountName("prod", "chat-backend", TOKEN)
    assert str(name) == f"keyrot:prod:chat-backend:{TOKEN}"
    assert ServiceAccountName.parse(str(name)) == name
    assert ServiceAccountName.parse("Production App") is None
    assert ServiceAccountName.parse("keyrot:Prod:x:y") is None
