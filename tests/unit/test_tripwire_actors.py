"""Which admin keys the tripwire takes for keyrot itself: the ids the admin-key secret records (never a name), an
id-less current key only when the organization's listing leaves no doubt, and ids remembered from earlier runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from keyrot.monitor.keyrot_actors import keyrot_actors
from keyrot.monitor.state import audit_digest
from keyrot.secret_model import AdminCredentials

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/dev/openai-admin-key"


@dataclass
class Secret:
    """The admin-key secret's labelled values (only what keyrot_actors reads)."""

    values: dict[str, str]
    reads: list[str] = field(default_factory=list)

    def get_string(self, secret_id: str, *, stage: str | None, version_id: str | None = None) -> str | None:
        self.reads.append(stage or "")
        return self.values.get(stage or "")


@dataclass
class Organization:
    """The organization's admin keys, as OpenAI lists them."""

    ids: list[str]
    listings: int = 0

    def iter_admin_api_keys(self) -> Iterator[Any]:
        self.listings += 1
        return iter([type("Key", (), {"id": key_id})() for key_id in self.ids])


def _value(key_id: str | None) -> str:
    """A stored admin-key value (a made-up key: the test never calls OpenAI)."""
    return AdminCredentials(f"sk-admin-value-{key_id}", key_id).to_json()


def _actors(values: dict[str, str], org: list[str], remembered: list[str] | None = None) -> Any:
    organization = Organization(org)
    result = keyrot_actors(Secret(values), ARN, organization, remembered or [])  # type: ignore[arg-type]
    return result, organization


def test_the_ids_the_secret_records_are_keyrots_and_no_listing_is_needed() -> None:
    actors, org = _actors({"AWSCURRENT": _value("key_new"), "AWSPREVIOUS": _value("key_old")}, ["key_new", "key_x"])
    assert actors.complete and actors.acted("key_new") and actors.acted("key_old")
    assert not actors.acted("key_x") and org.listings == 0


def test_an_id_less_current_key_is_learnt_when_it_is_the_only_admin_key_unaccounted_for() -> None:
    actors, org = _actors({"AWSCURRENT": _value(None), "AWSPREVIOUS": _value("key_old")}, ["key_boot", "key_old"])
    assert actors.complete and actors.acted("key_boot") and org.listings == 1


def test_an_id_less_current_key_among_other_admin_keys_stays_unknown() -> None:
    # GIVEN an id-less current key and two admin keys it could be
    actors, _ = _actors({"AWSCURRENT": _value(None)}, ["key_boot", "key_human"])
    # THEN neither is taken for keyrot's, and the tripwire knows it cannot tell
    assert not actors.complete and not actors.acted("key_boot") and not actors.acted("key_human")


def test_a_name_never_makes_a_key_keyrots() -> None:
    # GIVEN the secret records its key; another admin key exists (whatever it is called)
    actors, _ = _actors({"AWSCURRENT": _value("key_real")}, ["key_real", "key_named_keyrot_admin"])
    assert not actors.acted("key_named_keyrot_admin")


def test_an_id_less_previous_key_is_recognised_when_it_was_learnt_while_current() -> None:
    # GIVEN a first key learnt (remembered) while current, now AWSPREVIOUS after the first admin rotation
    remembered = [audit_digest("key_boot")]
    actors, _ = _actors({"AWSCURRENT": _value("key_new"), "AWSPREVIOUS": _value(None)}, ["key_new"], remembered)
    assert actors.complete and actors.acted("key_boot") and actors.acted("key_new")
    # AND one never learnt leaves the tripwire knowing it cannot tell
    unlearnt, _ = _actors({"AWSCURRENT": _value("key_new"), "AWSPREVIOUS": _value(None)}, ["key_new"])
    assert not unlearnt.complete


def test_the_same_value_under_two_labels_counts_once() -> None:
    # GIVEN AWSPENDING left on the AWSCURRENT version (AWS does so) with an id-less value, the only admin key
    same = _value(None)
    actors, _ = _actors({"AWSCURRENT": same, "AWSPENDING": same}, ["key_boot"])
    assert actors.complete and actors.acted("key_boot")


def test_remembered_ids_keep_at_most_six_newest() -> None:
    actors, _ = _actors({"AWSCURRENT": _value("key_now")}, ["key_now"])
    earlier = [audit_digest(f"key_{n}") for n in range(6)]
    kept = actors.remembered(earlier)
    assert len(kept) == 6 and kept[-1] == audit_digest("key_now") and audit_digest("key_0") not in kept


def test_a_damaged_value_is_a_key_keyrot_cannot_recognise_never_an_error() -> None:
    actors, _ = _actors({"AWSCURRENT": _value("key_now"), "AWSPREVIOUS": "{not json"}, ["key_now"])
    assert not actors.complete and actors.acted("key_now")


def test_the_same_key_stored_again_with_its_id_is_known_under_both_labels() -> None:
    # GIVEN the first key stored without its id, then stored again with it (`admin-key set --key-id`)
    without = AdminCredentials("sk-admin-value-boot", None).to_json()
    with_id = AdminCredentials("sk-admin-value-boot", "key_boot").to_json()
    actors, org = _actors({"AWSCURRENT": with_id, "AWSPREVIOUS": without}, ["key_boot", "key_human"])
    # THEN it is one key, known by its id, and nothing is left unknown
    assert actors.complete and actors.acted("key_boot") and org.listings == 0
