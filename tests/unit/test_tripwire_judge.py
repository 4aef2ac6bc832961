"""The tripwire's judgement of audit-log events: what others did in the project, to keyrot's accounts and to admin
keys is found and names its actor; keyrot's own actions, other projects and unreadable entries never are."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot.monitor import notifications as notes
from keyrot.monitor.keyrot_actors import KeyrotActors
from keyrot.monitor.state import audit_digest
from keyrot.monitor.tripwire import Judgement, Lookups, ManagedKey, TripwireKind, judge
from keyrot.openai_admin import AuditActor, AuditEvent, MalformedAuditEvent, ProjectApiKey, UnknownAuditEvent
from keyrot.openai_admin.audit_log import AuditEntry, parse_audit_entry
from keyrot.redaction import scrub
from tests.prove.strategies import json_values

PROJECT, OTHER, DEFAULT = "proj_env", "proj_other", "proj_default"
KEYROT_ADMIN, OTHER_ADMIN = "key_keyrotadmin", "key_someoneelse"
ALICE = AuditActor("session", user_id="user-alice", email="alice@example.com")
KEYROT = AuditActor("api_key", user_id="user-owner", email="owner@example.com", api_key_id=KEYROT_ADMIN)
STRANGER = AuditActor("api_key", user_id="user-bob", email="bob@example.com", api_key_id=OTHER_ADMIN)
HELD = ManagedKey("chat-backend", "current", "key_current", "svc_acct_current")
HAND_MADE = ProjectApiKey("key_hand", "laptop", "sk-...abcd", 1, None, "user", "user-alice", "Alice", "active")
ACTORS = KeyrotActors(frozenset({audit_digest(KEYROT_ADMIN)}), complete=True)


def _event(kind: str, actor: AuditActor | None, resource: str | None, project: str | None = DEFAULT) -> AuditEvent:
    return AuditEvent(f"audit_log-{kind}-{resource}", kind, 1_800_000_000, actor, project, resource)


def _judge(
    *entries: AuditEntry,
    actors: KeyrotActors = ACTORS,
    keys: dict[str, ProjectApiKey] | None = None,
    accounts: set[str] | None = None,
    shared: tuple[str, ...] | None = None,
) -> Judgement:
    listed = {"key_hand": HAND_MADE} if keys is None else keys
    return judge(
        entries,
        project_id=PROJECT,
        environment="dev",
        shared_environments=shared,
        actors=actors,
        managed=[HELD],
        lookups=Lookups(key=listed.get, account=lambda account: account in (accounts or set())),
    )


def test_a_key_made_in_the_console_names_the_person() -> None:
    # GIVEN a person's key creation in the environment's project WHEN judged
    (finding,) = _judge(_event("api_key.created", ALICE, "key_hand", PROJECT)).findings
    # THEN it is found with who made it and the key as the project lists it
    assert (finding.kind, finding.actor, finding.key) == (
        TripwireKind.KEY_CREATED,
        "alice@example.com (console)",
        HAND_MADE,
    )


def test_a_key_made_in_the_console_in_another_project_is_not_a_finding() -> None:
    judgement = _judge(_event("api_key.created", ALICE, "key_elsewhere", OTHER), keys={})
    assert judgement.findings == [] and judgement.elsewhere == 1


def test_keyrots_own_actions_are_never_findings() -> None:
    # GIVEN every kind of event, made with keyrot's own admin key
    events = [
        _event("api_key.created", KEYROT, "key_hand"),
        _event("service_account.created", KEYROT, "svc_acct_new"),
        _event("service_account.deleted", KEYROT, HELD.service_account_id),
        _event("tenant.admin_api_key.created", KEYROT, None, None),
        _event("tenant.admin_api_key.deleted", KEYROT, None, None),
    ]
    # WHEN judged THEN none is a finding
    assert _judge(*events, accounts={"svc_acct_new"}).findings == []


def test_an_admin_key_action_filed_under_the_default_project_is_found_by_looking_the_key_up() -> None:
    # GIVEN another admin key creating a key: OpenAI files it under the default project, not the one acted on
    event = _event("api_key.created", STRANGER, "key_hand", DEFAULT)
    # WHEN judged THEN the key is looked up in the project: found, and named with the admin key that made it
    (finding,) = _judge(event).findings
    assert finding.actor == f"API key {OTHER_ADMIN} (bob@example.com)"
    # AND a key the project does not have was made elsewhere
    assert _judge(event, keys={}).elsewhere == 1


def test_a_keyless_service_account_made_by_another_admin_key_is_found_through_the_projects_accounts() -> None:
    event = _event("service_account.created", STRANGER, "svc_acct_x")
    assert [f.kind for f in _judge(event, accounts={"svc_acct_x"}).findings] == [TripwireKind.ACCOUNT_CREATED]
    assert _judge(event, accounts=set()).findings == []


def test_an_account_made_with_its_key_is_one_finding_the_key() -> None:
    # GIVEN a person creating a service account and, with it, its key
    key = ProjectApiKey("key_sa", "k", "sk-...wxyz", 1, None, "service_account", "svc_acct_x", "robot", "active")
    events = [
        _event("service_account.created", ALICE, "svc_acct_x", PROJECT),
        _event("api_key.created", ALICE, "key_sa", PROJECT),
    ]
    # WHEN judged THEN on-call hears about the key (which names its account), once
    assert [f.kind for f in _judge(*events, keys={"key_sa": key}).findings] == [TripwireKind.KEY_CREATED]


def test_deleting_keyrots_account_names_the_key_it_held() -> None:
    (finding,) = _judge(_event("service_account.deleted", ALICE, HELD.service_account_id, PROJECT)).findings
    assert (finding.kind, finding.managed) == (TripwireKind.MANAGED_DELETED, HELD)


def test_deleting_someone_elses_account_is_not_a_finding() -> None:
    assert _judge(_event("service_account.deleted", ALICE, "svc_acct_unrelated", PROJECT)).findings == []


def test_admin_keys_made_or_deleted_by_a_person_are_findings_without_a_key_id() -> None:
    events = [
        _event("tenant.admin_api_key.created", ALICE, None, None),
        _event("tenant.admin_api_key.deleted", STRANGER, None, None),
    ]
    findings = _judge(*events).findings
    assert [(f.kind, f.resource_id) for f in findings] == [
        (TripwireKind.ADMIN_KEY_CREATED, None),
        (TripwireKind.ADMIN_KEY_DELETED, None),
    ]


def test_api_key_actions_are_not_judged_while_keyrots_own_admin_key_id_is_unknown() -> None:
    # GIVEN keyrot cannot tell its own admin key (an id-less key among several)
    blind = KeyrotActors(frozenset(), complete=False)
    events = [_event("api_key.created", STRANGER, "key_hand"), _event("api_key.created", ALICE, "key_hand", PROJECT)]
    # WHEN judged THEN admin-key actions are counted as unverified, a person's are still found
    judgement = _judge(*events, actors=blind)
    assert (judgement.unverified, [f.actor for f in judgement.findings]) == (1, ["alice@example.com (console)"])


def test_a_key_minted_by_another_environment_declared_to_share_the_project_is_not_a_finding() -> None:
    theirs = ProjectApiKey(
        "key_s", "k", "sk-...", 1, None, "service_account", "svc_acct_s", "keyrot:staging:app:abc", "active"
    )
    event = _event("api_key.created", STRANGER, "key_s")
    assert _judge(event, keys={"key_s": theirs}, shared=("staging",)).shared == 1
    assert len(_judge(event, keys={"key_s": theirs}, shared=None).findings) == 1  # undeclared: reported


def test_malformed_entries_and_unknown_types_are_counted_by_reason_never_judged() -> None:
    broken = MalformedAuditEvent(3, "audit_log-x", "field actor is not a session or api_key actor")
    unknown = UnknownAuditEvent("audit_log-y", "project.user.added", 1_800_000_000, ALICE, PROJECT)
    judgement = _judge(broken, unknown)
    assert judgement.findings == []
    assert dict(judgement.skipped) == {
        "malformed: field actor is not a session or api_key actor": 1,
        "unknown type project.user.added": 1,
    }


KEY_SHAPED = "sk-proj-PLANTEDabcdefghijklmnopqrstuvwxyz0123456789"
_ids = st.sampled_from(["key_hand", "svc_acct_current", "audit_log-1", KEY_SHAPED, None, 7])
_actors = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["session", "api_key", "robot"]),
            "session": st.fixed_dictionaries(
                {"user": st.fixed_dictionaries({"id": _ids, "email": st.sampled_from(["a@b.c", KEY_SHAPED, None])})}
            ),
            "api_key": st.fixed_dictionaries({"id": _ids, "type": st.sampled_from(["user", "service_account"])}),
        }
    ),
)
_raw_entries = st.fixed_dictionaries(
    {
        "id": _ids,
        "type": st.sampled_from(["api_key.created", "service_account.deleted", "tenant.admin_api_key.created", "x.y"]),
        "effective_at": st.one_of(st.integers(0, 2**40), json_values),
        "actor": _actors,
        "project": st.one_of(st.none(), st.fixed_dictionaries({"id": st.sampled_from([PROJECT, OTHER, KEY_SHAPED])})),
    },
    optional={
        "api_key.created": st.fixed_dictionaries({"id": _ids}),
        "service_account.deleted": st.fixed_dictionaries({"id": _ids}),
        "extra": json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(raw=st.lists(_raw_entries, max_size=6))
def test_whatever_the_log_says_judging_never_fails_and_no_key_reaches_a_notification(raw: list[Any]) -> None:
    # GIVEN any entries, some with key-shaped text where ids and e-mails belong
    entries = [parse_audit_entry(item, position) for position, item in enumerate(raw)]
    # WHEN judged, and every finding written as on-call would read it
    judgement = _judge(*entries, accounts={"svc_acct_current"})
    texts = [finding.actor for finding in judgement.findings]
    for finding in judgement.findings:
        texts.append(notes.created_by(finding.actor, finding.at, "https://runbook"))
        texts.append(
            notes.admin_key_changed_outside("dev", finding.event_id, "created", None, finding.actor, 0, "r").body
        )
        texts += [f"{reason}" for reason in judgement.skipped]
    # THEN no text holds anything key-shaped, and keyrot's own admin key is never the actor of a finding
    assert all(scrub(text) == text for text in texts)
    assert all(KEYROT_ADMIN not in finding.actor for finding in judgement.findings)
