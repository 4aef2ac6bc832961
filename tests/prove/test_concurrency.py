"""Concurrency and load: duplicate invocations of a step, many secrets and two environments at once, 200 secrets
under OpenAI rate limiting. Exactly one service account per rotation, consistent secrets, nothing lost.

moto is made to behave as Secrets Manager does where concurrency depends on it (lab.moto_gaps): every
API call is atomic, and PutSecretValue refuses a second, different value for a version that already holds one.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from keyrot.errors import KeyrotError
from keyrot.openai_admin import KeyStatus, OpenAIKeyProbe, OpenAITransport
from keyrot.rotation.events import STEP_NAMES
from keyrot.rotation.naming import ServiceAccountName
from lab.moto_gaps import atomic_calls
from lab.openai_standin import OpenAIStandIn, rate_limited
from lab.rotation_driver import RotationRun
from lab.scenario import RotationWorld
from tests.prove.faultkit import FIGURES

DUPLICATES = 8


@pytest.fixture
def atomic_aws(aws: None) -> Iterator[None]:
    """Each moto call runs alone, as each AWS API call is atomic (AWS's PutSecretValue rule comes with `aws`)."""
    with atomic_calls():
        yield


def _status(world: RotationWorld, api_key: str) -> KeyStatus:
    return OpenAIKeyProbe(OpenAITransport(world.openai.base_url)).check(api_key).status


def _accounts_for(world: RotationWorld, token: str) -> list[str]:
    return [account.id for account in world.keyrot_accounts() if account.name.endswith(f":{token}")]


# --- the same step, several times at once -------------------------------------------------------------------------


@pytest.mark.parametrize("emergency", [False, True], ids=["grace-period", "emergency"])
@pytest.mark.parametrize("step", STEP_NAMES)
def test_duplicate_invocations_of_a_step_mint_one_account_and_keep_the_secret_consistent(
    world: RotationWorld, atomic_aws: None, step: str, emergency: bool
) -> None:
    # GIVEN a secret with a working key, and a rotation that has run the steps before `step`
    world = world.with_settings(grace_period_seconds=0) if emergency else world
    arn = world.create_managed_secret("chat-backend")
    assert world.driver().rotate(arn).succeeded
    before = world.current(arn)
    driver = world.driver()
    token = driver.start(arn)
    for earlier in STEP_NAMES[: STEP_NAMES.index(step)]:
        driver.step(arn, token, earlier)
    # WHEN Secrets Manager's invocation of `step` arrives several times at once
    barrier = threading.Barrier(DUPLICATES)

    def invoke(_: int) -> KeyrotError | None:
        barrier.wait()
        try:
            driver.step(arn, token, step)
        except KeyrotError as exc:  # a duplicate may lose a race; it must say so with a typed error
            return exc
        return None

    with ThreadPoolExecutor(DUPLICATES) as pool:
        outcomes = list(pool.map(invoke, range(DUPLICATES)))
    # THEN at least one succeeded, and the rotation (Secrets Manager retries it) converges
    assert any(outcome is None for outcome in outcomes), outcomes
    run = driver.rotate(arn, token=token)
    assert run.succeeded and run.attempts == 1, run.failures
    current = world.current(arn)
    assert _accounts_for(world, token) == [current.service_account_id], "one account, and it backs the current key"
    assert _status(world, current.api_key) is KeyStatus.VALID
    assert world.previous(arn) == before
    assert _status(world, before.api_key) is (KeyStatus.DEAD if emergency else KeyStatus.VALID)
    assert not any("AWSPENDING" in labels for labels in world.stages(arn).values())
    failed = [type(outcome).__name__ for outcome in outcomes if outcome is not None]
    FIGURES.append(
        f"duplicates {step} ({'emergency' if emergency else 'grace period'}): "
        f"{DUPLICATES - len(failed)} of {DUPLICATES} succeeded{f', others: {sorted(set(failed))}' if failed else ''}"
    )


# --- many secrets, two environments -------------------------------------------------------------------------------


def test_two_environments_and_many_keys_rotating_at_once_do_not_interfere(
    openai_standin: OpenAIStandIn, secrets_client: Any, atomic_aws: None
) -> None:
    # GIVEN two environments sharing one OpenAI project, each with the same ten key names
    dev = RotationWorld.create(openai_standin, secrets_client, environment="dev")
    prod = RotationWorld.create(openai_standin, secrets_client, environment="prod")
    prod.project_id = dev.project_id
    names = [f"app-{index}" for index in range(10)]
    secrets = [(world, world.create_managed_secret(name)) for world in (dev, prod) for name in names]
    # WHEN every secret is rotated twice, all at once
    for _ in range(2):
        with ThreadPoolExecutor(16) as pool:
            runs = list(pool.map(lambda pair: pair[0].driver().rotate(pair[1]), secrets))
        assert all(run.succeeded for run in runs), [run.failures for run in runs if not run.succeeded]
    # THEN each secret holds its own environment's working keys, and the project holds exactly those accounts
    expected: set[str] = set()
    for world, arn in secrets:
        current, previous = world.current(arn), world.previous(arn)
        assert previous is not None
        for key in (current, previous):
            assert (key.environment, key.project_id) == (world.environment, dev.project_id)
            assert world.openai.state.key_is_live(key.key_id)
            expected.add(key.service_account_id)
        assert arn.split(":secret:")[1].startswith(f"keyrot/{world.environment}/{current.key_name}")
    live = {account.id: account.name for account in dev.keyrot_accounts()}
    assert set(live) == expected and len(expected) == 2 * len(secrets)
    for name in live.values():
        parsed = ServiceAccountName.parse(name)
        assert parsed is not None and parsed.environment in ("dev", "prod") and parsed.key_name in names


# --- load ---------------------------------------------------------------------------------------------------------

SECRETS = 200
WORKERS = 16
RETRY_AFTER = 0.05


@pytest.mark.slow
def test_200_secrets_rotated_concurrently_under_rate_limiting_all_complete(
    openai_standin: OpenAIStandIn, secrets_client: Any, atomic_aws: None
) -> None:
    # GIVEN 200 secrets, and OpenAI answering about a quarter of the create calls with 429 and Retry-After
    world = RotationWorld.create(openai_standin, secrets_client, environment="load")
    arns = [world.create_managed_secret(f"svc-{index:03d}") for index in range(SECRETS)]
    limited = random.Random(200).sample(range(1, 2 * SECRETS + 1), k=SECRETS // 2)
    openai_standin.faults.add(rate_limited("create_service_account", calls=limited, retry_after=RETRY_AFTER))
    # WHEN they are all rotated at once by 16 workers
    started = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        runs: list[RotationRun] = list(pool.map(lambda arn: world.driver().rotate(arn, max_attempts=5), arns))
    seconds = time.perf_counter() - started
    # THEN every rotation completed, each secret has a working key of its own, and no account is left over
    assert all(run.succeeded for run in runs), [run.failures for run in runs if not run.succeeded][:3]
    currents = [world.current(arn) for arn in arns]
    assert len({key.key_id for key in currents}) == SECRETS
    assert all(world.openai.state.key_is_live(key.key_id) for key in currents)
    assert {account.id for account in world.keyrot_accounts()} == {key.service_account_id for key in currents}
    creates = openai_standin.calls_to("create_service_account")
    throttled = sum(1 for call in creates if call.status == 429)
    assert throttled > 0, "the stand-in never rate-limited: the test proves nothing"
    waits = sum(1 for pause in world.sleeps if pause == RETRY_AFTER)
    retried = sum(run.attempts - 1 for run in runs)
    figures = (
        f"load: {SECRETS} secrets, {WORKERS} workers, {seconds:.1f}s; {len(creates)} create calls, "
        f"{throttled} answered 429, {waits} Retry-After waits by the transport, "
        f"{retried} rotation retries by Secrets Manager"
    )
    FIGURES.append(figures)
    print(figures)
