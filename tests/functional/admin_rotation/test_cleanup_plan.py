"""The cleanup's decision, as invariants over any organization: it never deletes a key something still needs, never
another environment's, never a human-made key unless opted in and due, and leaves no keyrot orphan behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot.admin_rotation import AdminKeyName, AdminKeysSeen, plan_cleanup
from keyrot.openai_admin import AdminApiKey

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TOKENS = ("t-current", "t-previous", "t-pending", "t-old", "t-other")


@st.composite
def keys(draw: st.DrawFn) -> AdminApiKey:
    kind = draw(st.sampled_from(["dev", "prod", "human", "unnamed"]))
    token = draw(st.sampled_from(TOKENS))
    name = {"dev": str(AdminKeyName("dev", token)), "prod": str(AdminKeyName("prod", token)), "human": "ops laptop"}
    age = draw(st.integers(min_value=0, max_value=3 * 86400))
    return AdminApiKey(
        id=f"key_{draw(st.integers(0, 10_000))}",
        name=name.get(kind),
        redacted_value="sk-admin...xyz",
        created_at=int(NOW.timestamp()) - age,
        expires_at=None,
        last_used_at=None,
        owner_id=None,
        owner_type="user",
    )


@st.composite
def situations(draw: st.DrawFn) -> tuple[AdminKeysSeen, int, bool, float]:
    listed = tuple({key.id: key for key in draw(st.lists(keys(), max_size=8))}.values())
    ids = [key.id for key in listed]
    pick = st.one_of(st.none(), st.sampled_from(ids)) if ids else st.none()
    seen = AdminKeysSeen(
        environment="dev",
        listed=listed,
        current_key_id=draw(pick),
        pending_version=draw(st.one_of(st.none(), st.just("t-pending"))),
        pending_key_id=draw(pick),
        pending_unreadable=draw(st.booleans()),
        previous_version=draw(st.one_of(st.none(), st.just("t-previous"))),
        previous_key_id=draw(pick),
        previous_since=draw(st.one_of(st.none(), st.just(NOW - timedelta(seconds=draw(st.integers(0, 7200)))))),
    )
    grace = draw(st.integers(min_value=0, max_value=3600))
    return seen, grace, draw(st.booleans()), NOW.timestamp() - draw(st.integers(min_value=0, max_value=86400))


@settings(max_examples=400, deadline=None)
@given(situations())
def test_the_cleanup_never_deletes_what_is_needed_and_leaves_no_keyrot_orphan(
    situation: tuple[AdminKeysSeen, int, bool, float],
) -> None:
    # GIVEN any organization's admin keys and any labels of the admin-key secret
    seen, grace, delete_bootstrap, abandoned_before = situation
    # WHEN the cleanup plans
    plan = plan_cleanup(
        seen, now=NOW, grace_seconds=grace, delete_bootstrap=delete_bootstrap, abandoned_before=abandoned_before
    )
    doomed = {d.key_id: d.reason for d in plan.doomed}
    by_id = {key.id: key for key in seen.listed}
    due = seen.previous_since is not None and NOW >= seen.previous_since + timedelta(seconds=grace)
    # THEN each key is deleted at most once, and only listed (live) keys
    assert len(doomed) == len(plan.doomed) and set(doomed) <= set(by_id)
    # AND never the current or the pending key
    assert not {seen.current_key_id, seen.pending_key_id} & set(doomed)
    for key_id, reason in doomed.items():
        name = AdminKeyName.parse(by_id[key_id].name)
        # AND never another environment's key
        assert name is None or name.environment == "dev"
        # AND a key not named by keyrot only as the previous (bootstrap) key, opted in, after its grace
        if name is None:
            assert (key_id, reason, delete_bootstrap, due) == (seen.previous_key_id, "bootstrap", True, True)
        # AND the previous key only after its grace
        if key_id == seen.previous_key_id:
            assert due and seen.previous_version is not None
    # AND every keyrot key of this environment nothing accounts for, older than any invocation, is deleted
    accounted = {seen.current_key_id, seen.pending_key_id, seen.previous_key_id}
    for key in seen.listed:
        name = AdminKeyName.parse(key.name)
        if name is None or name.environment != "dev" or key.id in accounted or key.created_at >= abandoned_before:
            continue
        if seen.pending_unreadable and name.token == seen.pending_version:
            continue
        assert doomed.get(key.id) == "abandoned", key
