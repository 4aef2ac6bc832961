"""openai_client / async_openai_client: the README's one-line snippet survives `keyrot rotate --emergency`.

The application developer copies one line; the operator revokes the leaked key at 3 a.m. The official SDK against
the OpenAI stand-in, the secret in moto: every request after an emergency rotation must still succeed, because a
request OpenAI rejects as invalid_api_key is sent once more with the key Secrets Manager now holds.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

import keyrot
from keyrot.client import KeyProvider, async_openai_client, openai_client
from keyrot.client.refresh_auth import refresh_on_rejection
from keyrot.secret_model import ManagedKey
from lab.scenario import RotationWorld

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "still there?"}]}


@pytest.fixture
def emergency(openai_standin: Any, secrets_client: Any) -> tuple[RotationWorld, str]:
    """A secret rotated once in an environment with grace 0: every later rotation revokes the previous key at once."""
    world = RotationWorld.create(openai_standin, secrets_client, grace_period_seconds=0)
    arn = world.create_managed_secret("chat-backend")
    assert world.driver().rotate(arn).succeeded
    return world, arn


def test_the_snippet_loses_no_request_through_emergency_rotations(emergency: tuple[RotationWorld, str]) -> None:
    # GIVEN the README's snippet (its provider caches the key for the default 5 minutes), the SDK's retries off
    world, arn = emergency
    client = openai_client(arn, base_url=world.openai.base_url, max_retries=0)
    client.chat.completions.create(**CHAT)
    served: list[str] = []
    for _ in range(3):
        # WHEN the operator rotates in an emergency, which revokes the key the application caches
        revoked = world.current(arn).key_id
        assert world.driver().rotate(arn).succeeded
        assert not world.openai.state.key_is_live(revoked)
        # THEN the very next request succeeds
        client.chat.completions.create(**CHAT)
        served.append(world.current(arn).key_id)
    assert len(set(served)) == 3


def test_the_async_snippet_loses_no_request_through_emergency_rotations(emergency: tuple[RotationWorld, str]) -> None:
    # GIVEN the asyncio snippet, the SDK's retries off, eight requests at a time
    world, arn = emergency

    async def main() -> None:
        client = async_openai_client(arn, base_url=world.openai.base_url, max_retries=0)
        await client.chat.completions.create(**CHAT)
        for _ in range(2):
            # WHEN an emergency rotation revokes the cached key
            assert world.driver().rotate(arn).succeeded
            # THEN every request of the next burst succeeds
            await asyncio.gather(*(client.chat.completions.create(**CHAT) for _ in range(8)))

    asyncio.run(main())


def test_the_bare_provider_fails_until_its_ttl_after_an_emergency_rotation(
    emergency: tuple[RotationWorld, str],
) -> None:
    # GIVEN the building block alone, as the README's old snippet used it
    world, arn = emergency
    client = openai.OpenAI(api_key=KeyProvider(arn), base_url=world.openai.base_url, max_retries=0)
    client.chat.completions.create(**CHAT)
    # WHEN an emergency rotation revokes its key
    assert world.driver().rotate(arn).succeeded
    # THEN its requests fail (this is what openai_client exists for)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(**CHAT)


def test_a_provider_with_its_own_options_can_be_passed(emergency: tuple[RotationWorld, str]) -> None:
    # GIVEN a KeyProvider built with its own client and TTL
    world, arn = emergency
    provider = KeyProvider(arn, client=world.secrets, ttl_seconds=30)
    client = openai_client(provider, base_url=world.openai.base_url, max_retries=0)
    client.chat.completions.create(**CHAT)
    # WHEN the key is revoked in an emergency
    assert world.driver().rotate(arn).succeeded
    client.chat.completions.create(**CHAT)
    # THEN that provider was refreshed, and serves the current key
    assert provider.key_id == world.current(arn).key_id


# --- what is not retried -------------------------------------------------------------------------------------------


class Secrets:
    """An in-memory Secrets Manager client: `current` is the AWSCURRENT key."""

    def __init__(self, current: str) -> None:
        self.current = current
        self.calls = 0

    def get_secret_value(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        suffix = self.current.rsplit("-", 1)[-1]
        return {
            "SecretString": ManagedKey(
                api_key=self.current,
                key_id=f"key_{suffix}",
                service_account_id=f"svc_acct_{suffix}",
                project_id="proj_x",
                environment="dev",
                key_name="chat-backend",
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            ).to_json(),
            "VersionId": suffix,
        }


class OpenAIDouble:
    """An httpx2 MockTransport handler: 401 `code` for every key in `refused`, 200 otherwise; records the keys seen."""

    def __init__(self, refused: set[str], code: str = "invalid_api_key") -> None:
        self.refused = refused
        self.code = code
        self.keys: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        key = request.headers.get("authorization", "")[7:]
        self.keys.append(key)
        if key in self.refused:
            return httpx2.Response(401, json={"error": {"message": "refused", "code": self.code, "type": "x"}})
        return httpx2.Response(200, json={"object": "list", "data": []})


class StreamingTransport(httpx2.BaseTransport):
    """Sends the body as a real transport does: by iterating its stream once, without buffering it."""

    def __init__(self, handler: OpenAIDouble) -> None:
        self.handler = handler

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        for _ in request.stream:  # type: ignore[union-attr]
            pass
        return self.handler(request)


def _client(provider: KeyProvider, double: OpenAIDouble) -> Any:
    http = httpx2.Client(transport=httpx2.MockTransport(double))
    return openai_client(provider, base_url="https://openai.test/v1", max_retries=0, http_client=http)


def test_a_refusal_other_than_invalid_api_key_is_not_retried() -> None:
    # GIVEN a key OpenAI refuses for another reason (a permission, not a revocation), and a newer key in the secret
    secrets = Secrets("sk-fake-old-1")
    provider = KeyProvider("keyrot/dev/chat-backend", client=secrets)
    double = OpenAIDouble({"sk-fake-old-1"}, code="insufficient_permissions")
    client = _client(provider, double)
    provider()
    secrets.current = "sk-fake-new-2"
    # WHEN a request is refused
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    # THEN it was sent once, and the secret was not read again
    assert double.keys == ["sk-fake-old-1"] and secrets.calls == 1


def test_a_key_the_caller_set_itself_is_never_replaced_by_the_providers() -> None:
    # GIVEN a request sent with an Authorization header the caller chose, which OpenAI rejects
    secrets = Secrets("sk-fake-mine-1")
    provider = KeyProvider("keyrot/dev/chat-backend", client=secrets)
    double = OpenAIDouble({"sk-fake-theirs-9"})
    client = _client(provider, double)
    # WHEN the request is rejected as invalid_api_key
    with pytest.raises(openai.AuthenticationError):
        client.models.list(extra_headers={"Authorization": "Bearer sk-fake-theirs-9"})
    # THEN it is not sent again with the provider's key
    assert double.keys == ["sk-fake-theirs-9"]


def test_a_rejection_with_no_newer_key_is_sent_once() -> None:
    # GIVEN a key revoked while Secrets Manager still holds it (no rotation happened)
    secrets = Secrets("sk-fake-only-1")
    provider = KeyProvider("keyrot/dev/chat-backend", client=secrets)
    double = OpenAIDouble({"sk-fake-only-1"})
    client = _client(provider, double)
    # WHEN requests are rejected
    for _ in range(3):
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    # THEN each was sent once, and the secret was read again only once (the first report of that key)
    assert double.keys == ["sk-fake-only-1"] * 3 and secrets.calls == 2


def test_a_streamed_upload_is_not_replayed() -> None:
    # GIVEN a request whose body is a stream that cannot be sent twice, with the refresh auth on its client
    secrets = Secrets("sk-fake-old-1")
    provider = KeyProvider("keyrot/dev/chat-backend", client=secrets)
    provider()
    secrets.current = "sk-fake-new-2"
    double = OpenAIDouble({"sk-fake-old-1"})
    http = httpx2.Client(transport=StreamingTransport(double), auth=refresh_on_rejection(provider))

    def body() -> Any:
        yield b"part"

    # WHEN OpenAI rejects it
    response = http.post(
        "https://openai.test/v1/files", content=body(), headers={"Authorization": "Bearer sk-fake-old-1"}
    )
    # THEN the 401 comes back as it was, not a half-replayed request
    assert response.status_code == 401 and double.keys == ["sk-fake-old-1"]


# --- construction ----------------------------------------------------------------------------------------------------


def test_api_key_is_refused_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="do not pass api_key"):
        openai_client(KeyProvider("keyrot/dev/x", client=Secrets("sk-fake-a-1")), api_key="sk-fake-else-2")


def test_an_http_client_with_its_own_auth_is_refused() -> None:
    http = httpx2.Client(auth=("user", "pass"))
    with pytest.raises(ValueError, match="already has an auth"):
        openai_client(KeyProvider("keyrot/dev/x", client=Secrets("sk-fake-a-1")), http_client=http)


def test_the_callers_http_client_keeps_its_settings_and_gains_the_retry() -> None:
    # GIVEN an application passing its own http client with a response hook, and its cached key just revoked
    secrets = Secrets("sk-fake-old-1")
    provider = KeyProvider("keyrot/dev/chat-backend", client=secrets)
    provider()
    secrets.current = "sk-fake-new-2"
    double = OpenAIDouble({"sk-fake-old-1"})
    seen: list[int] = []
    http = httpx2.Client(
        transport=httpx2.MockTransport(double),
        event_hooks={"response": [lambda response: seen.append(response.status_code)]},
    )
    client = openai_client(provider, base_url="https://openai.test/v1", max_retries=0, http_client=http)
    # WHEN a request is made
    client.models.list()
    # THEN the caller's client sent it (its hook saw both answers) and keyrot's retry made it succeed
    assert seen == [401, 200] and double.keys == ["sk-fake-old-1", "sk-fake-new-2"]


def test_importing_keyrot_client_needs_only_the_standard_library_and_the_aws_sdk() -> None:
    # GIVEN a fresh interpreter (an application that installed keyrot with boto3 alone)
    code = (
        "import sys; before = set(sys.modules); import keyrot.client; "
        "print(' '.join(sorted({name.split('.')[0] for name in set(sys.modules) - before})))"
    )
    lambdas = str(Path(keyrot.__file__).resolve().parents[1])
    # WHEN it imports keyrot.client
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": lambdas}
    )
    # THEN nothing beyond the standard library, botocore's own closure and keyrot was imported (no openai, no httpx2)
    imported = set(done.stdout.split()) - set(sys.stdlib_module_names)
    assert imported <= {"keyrot", "botocore", "boto3", "jmespath", "dateutil", "urllib3", "s3transfer", "six"}, imported


def test_without_the_openai_sdk_the_helper_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an application that installed keyrot with boto3 alone
    monkeypatch.setitem(sys.modules, "openai", None)
    # WHEN it asks for an OpenAI client
    # THEN the error says to install the SDK (and that KeyProvider does not need it)
    with pytest.raises(ImportError, match="pip install openai"):
        openai_client("keyrot/dev/chat-backend")
