"""Invariants of the classification over generated environments: everything OpenAI lists is accounted for once,
keyrot's own accounts are never called unmanaged, nothing young is called abandoned, input order does not matter."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.inventory import KeyState, SecretRecord, ServiceAccountName
from keyrot.openai_admin import ProjectApiKey, ServiceAccount

from .builders import BOUND, ENV, NOW, account, account_name, api_key, key_of, run, secret, token, version

KEY_NAMES = ("chat", "batch")
LABELLINGS = (
    (STAGE_CURRENT,),
    (STAGE_PENDING,),
    (STAGE_PREVIOUS,),
    (STAGE_PREVIOUS, STAGE_REVOKED),
    (STAGE_REVOKED,),
    (),
)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[SecretRecord], list[ServiceAccount], list[ProjectApiKey]]:
    """Secrets with versions 0..n (labels used at most once per secret), and accounts: some backing versions, some
    twins, some for unknown tokens, other environments, other keys, foreign names; some with keys listed."""
    secrets: list[SecretRecord] = []
    accounts: list[ServiceAccount] = []
    keys: list[ProjectApiKey] = []
    number = 0
    for key_name in draw(st.lists(st.sampled_from(KEY_NAMES), unique=True, max_size=2)):
        used: set[str] = set()
        versions = []
        for _ in range(draw(st.integers(0, 4))):
            number += 1
            stages = tuple(s for s in draw(st.sampled_from(LABELLINGS)) if s not in used)
            used |= set(stages)
            versions.append(version(number, *stages, stored=draw(st.booleans()) or STAGE_PENDING not in stages))
            if draw(st.booleans()):  # OpenAI still lists its account
                owner = account(f"svc_acct_{number}", account_name(token(number), key_name), created=_age(draw))
                accounts.append(owner)
                if draw(st.booleans()):
                    keys.append(key_of(owner, f"key_{number}"))
        problem = "unreadable" if draw(st.integers(0, 9)) == 0 else None
        secrets.append(secret(*versions, key_name=key_name, problem=problem))
    for index in range(draw(st.integers(0, 5))):
        number += 1
        kind = draw(st.sampled_from(["twin", "unknown", "prod", "staging", "other-key", "foreign"]))
        target = draw(st.sampled_from(KEY_NAMES))
        name = {
            "twin": account_name(token(max(1, number - 1)), target),
            "unknown": account_name(token(number), target),
            "prod": account_name(token(number), target, environment="prod"),
            "staging": account_name(token(number), target, environment="staging"),
            "other-key": account_name(token(number), "search"),
            "foreign": f"exporter-{index}",
        }[kind]
        owner = account(f"svc_acct_x{number}", name, created=_age(draw))
        accounts.append(owner)
        if draw(st.booleans()):
            keys.append(key_of(owner, f"key_x{number}"))
    if draw(st.booleans()):
        keys.append(api_key("key_user", owner_id="user_1", owner_name="Dev", owner_type="user"))
    return secrets, accounts, keys


def _age(draw: st.DrawFn) -> object:
    return NOW - timedelta(seconds=draw(st.sampled_from([0, BOUND - 1, BOUND, 3600, 40 * 86400])))


PROPERTIES = settings(max_examples=100, deadline=None)


@PROPERTIES
@given(world=worlds())
def test_everything_openai_lists_is_accounted_for(world: tuple) -> None:
    # GIVEN an environment WHEN classified THEN every listed account and key has an entry
    secrets, accounts, keys = world
    inventory = run(secrets, accounts, keys, shared=("prod",))
    assert {a.id for a in accounts} <= {e.service_account_id for e in inventory.entries}
    assert {k.id for k in keys} <= {e.key_id for e in inventory.entries}


@PROPERTIES
@given(world=worlds())
def test_keyrot_accounts_of_this_environment_and_its_keys_are_never_unmanaged(world: tuple) -> None:
    secrets, accounts, keys = world
    inventory = run(secrets, accounts, keys, shared=("prod",))
    managed = {record.key_name for record in secrets}
    for entry in inventory.of_state(KeyState.UNMANAGED, KeyState.OTHER_ENVIRONMENT):
        name = ServiceAccountName.parse(entry.account_name or "")
        if name is not None and name.environment == ENV and name.key_name in managed and entry.problem is None:
            raise AssertionError(f"{entry.service_account_id} of {name} classified {entry.state}")


@PROPERTIES
@given(world=worlds())
def test_no_account_younger_than_the_bound_is_called_abandoned(world: tuple) -> None:
    secrets, accounts, keys = world
    inventory = run(secrets, accounts, keys, shared=("prod",))
    for entry in inventory.of_state(KeyState.DISPLACED):
        if entry.version_id is None:
            assert entry.created_at is not None and NOW - entry.created_at >= timedelta(seconds=BOUND)


@PROPERTIES
@given(world=worlds(), seed=st.integers(0, 2**32))
def test_the_order_of_the_inputs_does_not_matter(world: tuple, seed: int) -> None:
    secrets, accounts, keys = world
    shuffled = [list(part) for part in (secrets, accounts, keys)]
    for part in shuffled:
        random.Random(seed).shuffle(part)

    def answer(inventory: object) -> set:
        return {(e.key_id, e.service_account_id, e.version_id, e.state) for e in inventory.entries}  # type: ignore[attr-defined]

    assert answer(run(secrets, accounts, keys, shared=("prod",))) == answer(run(*shuffled, shared=("prod",)))


@PROPERTIES
@given(world=worlds())
def test_a_label_decides_only_the_state_of_the_version_it_is_on(world: tuple) -> None:
    # The current version's key is CURRENT; no other key is; a revoked state means OpenAI does not list it
    secrets, accounts, keys = world
    inventory = run(secrets, accounts, keys, shared=("prod",))
    for view in inventory.secrets:
        current = [e for e in view.entries if e.state is KeyState.CURRENT]
        assert all(STAGE_CURRENT in e.stages for e in current) and len(current) <= 1
        assert all(not e.listed for e in view.of_state(KeyState.REVOKED))
