"""`status`, `audit` and `doctor` tell the truth when a label does not: a key labelled revoked that OpenAI still lists
is live, a key no label accounts for is drift, and a revocation nobody could check at OpenAI is not shown as done."""

from __future__ import annotations

import json
from typing import Any

from lab.scenario import RotationWorld
from tests.functional.monitor.tampering import label_previous_revoked, unlabel_previous

from .conftest import Cli, rotated

STATUS = ("status", "--env", "dev", "--json")
DOCTOR = ("doctor", "--env", "dev", "--key", "chat-backend", "--json")


def _key(cli: Cli) -> dict[str, Any]:
    [key] = json.loads(cli(*STATUS).stdout)["environments"][0]["keys"]
    return dict(key)


def _findings(cli: Cli) -> dict[str, dict[str, Any]]:
    return {finding["check"]: finding for finding in json.loads(cli(*DOCTOR).stdout)["findings"]}


def test_status_shows_a_previous_key_labelled_revoked_but_still_listed_as_live(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a previous key whose version was labelled KEYROT_REVOKED by hand, its service account untouched
    arn = rotated(world, "chat-backend", times=2)
    previous = world.previous(arn)
    assert previous is not None
    label_previous_revoked(world.secrets, arn)
    # WHEN status runs
    key = _key(cli)
    text = cli("status", "--env", "dev").stdout
    # THEN it is not shown as revoked: OpenAI still lists it
    assert key["previous"]["revoked"] is False and key["previous"]["state"] == "displaced"
    assert key["health"] == "warn"
    assert f"{previous.key_id} (labelled revoked, still live at OpenAI)" in text


def test_status_shows_a_revocation_confirmed_by_openai_as_revoked(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a previous key revoked through keyrot (its account deleted, then labelled)
    arn = rotated(world, "chat-backend", times=2)
    previous = world.previous(arn)
    assert previous is not None
    assert cli("revoke-previous", "--env", "dev", "--key", "chat-backend", "--yes").exit_code == 0
    # WHEN status runs THEN it is revoked, checked at OpenAI
    key = _key(cli)
    assert key["previous"] == {
        "key_id": previous.key_id,
        "version_id": key["previous"]["version_id"],
        "revoked": True,
        "state": "revoked",
        "checked_at_openai": True,
    }
    assert f"{previous.key_id} (revoked)" in cli("status", "--env", "dev").stdout


def test_status_without_a_working_admin_key_still_shows_every_key_and_confirms_nothing(
    world: RotationWorld, cli: Cli
) -> None:
    # GIVEN a revoked previous key, then the admin key revoked at OpenAI (or unreadable by this operator)
    arn = rotated(world, "chat-backend", times=2)
    assert cli("revoke-previous", "--env", "dev", "--key", "chat-backend", "--yes").exit_code == 0
    world.openai.state.revoke_admin_key(world.admin_key)
    # WHEN status runs
    result = cli("status", "--env", "dev")
    document = json.loads(cli(*STATUS).stdout)["environments"][0]
    # THEN it succeeds, lists the key, and says the revocation is the label's word only, and why
    assert result.exit_code == 0, result.output
    assert world.current(arn).key_id in result.stdout
    assert "(labelled revoked, not checked at OpenAI)" in result.stdout
    assert "Revocations not checked at OpenAI: the OpenAI admin key was rejected" in result.stdout
    assert document["openai"]["checked"] is False
    assert document["keys"][0]["previous"]["revoked"] is False


def test_status_names_a_displaced_key_that_still_works(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a key pushed out of every label (two rotations inside one grace period whose cleanup never ran)
    arn = rotated(world, "chat-backend", times=2)
    displaced = world.previous(arn)
    assert displaced is not None
    unlabel_previous(world.secrets, arn)
    # WHEN status runs THEN the key is named as live with no label accounting for it
    key = _key(cli)
    assert key["displaced_keys"] == [displaced.key_id] and key["health"] == "warn"
    assert f"Displaced keys of chat-backend still live at OpenAI: {displaced.key_id}" in cli(*STATUS[:-1]).stdout


def test_audit_reports_a_key_labelled_revoked_that_openai_still_lists_as_drift(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a previous key labelled revoked, still live, well inside its grace period
    arn = rotated(world, "chat-backend", times=2)
    previous = world.previous(arn)
    assert previous is not None
    label_previous_revoked(world.secrets, arn)
    # WHEN audited
    result = cli("audit", "--env", "dev", "--json")
    # THEN it is drift (no grace applies to a key keyrot says it revoked)
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    [issue] = document["unrevoked_previous_keys"]
    assert (issue["key_id"], issue["role"], issue["within_grace"]) == (previous.key_id, "revoked-but-live", False)
    assert "labelled revoked, OpenAI still lists it" in cli("audit", "--env", "dev").stdout


def test_audit_reports_a_displaced_key_as_an_orphan(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a key no label accounts for, still live
    arn = rotated(world, "chat-backend", times=2)
    displaced = world.previous(arn)
    assert displaced is not None
    version = unlabel_previous(world.secrets, arn)
    # WHEN audited THEN its account is an orphan (with the version it belongs to as its token), and it is drift
    result = cli("audit", "--env", "dev", "--json")
    assert result.exit_code == 1
    [orphan] = json.loads(result.stdout)["orphans"]
    assert (orphan["key_ids"], orphan["token"]) == ([displaced.key_id], version)


def test_doctor_fails_a_previous_key_labelled_revoked_that_openai_still_lists(world: RotationWorld, cli: Cli) -> None:
    arn = rotated(world, "chat-backend", times=2)
    label_previous_revoked(world.secrets, arn)
    finding = _findings(cli)["previous key"]
    assert finding["status"] == "fail" and "labelled revoked but OpenAI still lists it" in finding["detail"]
    assert "keyrot revoke-previous --env dev --key chat-backend" in finding["hint"]


def test_doctor_fails_a_displaced_key_that_still_works(world: RotationWorld, cli: Cli) -> None:
    arn = rotated(world, "chat-backend", times=2)
    displaced = world.previous(arn)
    assert displaced is not None
    unlabel_previous(world.secrets, arn)
    findings = _findings(cli)
    assert findings["other live keys"]["status"] == "fail"
    assert displaced.key_id in findings["other live keys"]["detail"]
    assert findings["previous key"]["detail"] == "none"
