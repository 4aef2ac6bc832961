"""Bad input at keyrot's parsers: every document is either understood correctly or refused with a typed error that
names the problem without quoting the secret it came in."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyrot.constants import TAG_ENVIRONMENT, TAG_KEY_NAME, TAG_PROJECT_ID
from keyrot.errors import AdminKeyError, RotationEventError, SecretContractError
from keyrot.monitor.state import MonitorState, MonitorStateError
from keyrot.rotation.events import STEP_NAMES, RotationRequest
from keyrot.secret_model import (
    ENVIRONMENT_PATTERN,
    KEY_NAME_PATTERN,
    OPENAI_ID_PATTERN,
    AdminCredentials,
    ManagedKey,
    SecretIdentity,
)
from tests.prove.strategies import (
    MARKER,
    admin_payloads,
    json_values,
    key_payloads,
    mutated,
    rotation_events,
    tag_lists,
    text_of,
)

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_TOKEN = re.compile(r"[A-Za-z0-9\-]{32,64}")


@FUZZ
@given(text=text_of(key_payloads()))
def test_a_secret_value_is_parsed_exactly_or_refused_without_being_quoted(text: str) -> None:
    try:
        key = ManagedKey.from_json(text, what="pending secret value")
    except SecretContractError as exc:
        assert MARKER not in str(exc), "the error quotes the secret value"
        assert len(str(exc)) < 400
        return
    payload = json.loads(text)
    assert (key.api_key, key.key_id, key.service_account_id) == (
        payload["api_key"],
        payload["key_id"],
        payload["service_account_id"],
    )
    assert all(OPENAI_ID_PATTERN.fullmatch(value) for value in (key.key_id, key.service_account_id, key.project_id))
    assert ENVIRONMENT_PATTERN.fullmatch(key.environment) and KEY_NAME_PATTERN.fullmatch(key.key_name)
    assert key.created_at.tzinfo is not None and (key.expires_at is None or key.expires_at.tzinfo is not None)
    assert ManagedKey.from_json(key.to_json()) == key
    assert MARKER not in repr(key)


@FUZZ
@given(text=text_of(admin_payloads()))
def test_the_admin_key_secret_is_parsed_or_refused_without_being_quoted(text: str) -> None:
    try:
        credentials = AdminCredentials.from_json(text)
    except AdminKeyError as exc:
        assert MARKER not in str(exc)
        return
    payload = json.loads(text)
    assert credentials.admin_key == payload["admin_key"].strip() and credentials.admin_key
    assert MARKER not in repr(credentials)


@FUZZ
@given(tags=tag_lists())
def test_tags_give_a_valid_identity_or_name_the_bad_tag(tags: list[dict[str, str]]) -> None:
    values = {tag["Key"]: tag.get("Value", "") for tag in tags}
    try:
        identity = SecretIdentity.from_tags(tags)
    except SecretContractError as exc:
        assert any(name in str(exc) for name in (TAG_ENVIRONMENT, TAG_KEY_NAME, TAG_PROJECT_ID))
        assert len(str(exc)) < 800  # a huge tag value is cut short (70 characters, escaped)
        return
    assert identity == SecretIdentity(values[TAG_ENVIRONMENT], values[TAG_KEY_NAME], values[TAG_PROJECT_ID])
    assert ENVIRONMENT_PATTERN.fullmatch(identity.environment) and KEY_NAME_PATTERN.fullmatch(identity.key_name)
    assert OPENAI_ID_PATTERN.fullmatch(identity.project_id)


@FUZZ
@given(event=rotation_events())
def test_a_rotation_event_is_validated_before_anything_is_touched(event: Any) -> None:
    try:
        request = RotationRequest.from_event(event)
    except RotationEventError as exc:
        assert len(str(exc)) < 300
        return
    assert request.step in STEP_NAMES and request.step == event["Step"]
    assert request.secret_id == event["SecretId"] and request.secret_id.strip()
    assert _TOKEN.fullmatch(request.token) and request.token == event["ClientRequestToken"]
    assert request.rotation_token == event.get("RotationToken")


_STATE = {
    "version": 1,
    "watermark": 1_700_000_040,
    "marker": 3,
    "intent": {
        "start": 1_700_000_040,
        "end": 1_700_000_100,
        "first_marker": 4,
        "boundaries": [[1, "a", "b"]],
        "created_at": 5,
    },
    "notified": {"unmanaged:key_1": 1_700_086_400},
    "lease": {"owner": "run-1", "until": 1_700_000_400},
}


@FUZZ
@given(
    text=text_of(
        st.one_of(
            mutated(_STATE),
            mutated(_STATE["intent"]).map(lambda intent: {**_STATE, "intent": intent}),
            mutated(_STATE["lease"]).map(lambda lease: {**_STATE, "lease": lease}),
            json_values.map(lambda notified: {**_STATE, "notified": notified}),
        )
    )
)
def test_the_monitor_state_parameter_is_read_or_refused_as_not_keyrot_state(text: str) -> None:
    try:
        state = MonitorState.from_json(text, "/keyrot/dev/monitor-state")
    except MonitorStateError as exc:
        assert "/keyrot/dev/monitor-state" in str(exc)
        return
    assert state.watermark % 60 == 0
    assert MonitorState.from_json(state.to_json(), "x") == state
