"""The admin key goes only where the operator pointed keyrot: never to $OPENAI_BASE_URL, never over plain http.

Applications point OPENAI_BASE_URL at gateways and proxies; the CLI carries the organization admin key, so it reads
its own variable (KEYROT_OPENAI_ADMIN_BASE_URL), refuses http except to this machine, and names a host that is not
OpenAI's before it sends the key there.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyrot.cli import endpoint
from keyrot.cli.errors import UsageError
from keyrot.constants import DEFAULT_OPENAI_BASE_URL, ENV_OPENAI_ADMIN_BASE_URL
from lab.scenario import RotationWorld

from .conftest import Cli, rotated

_LABEL = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
_REMOTE_HOSTS = st.one_of(
    st.builds(lambda *labels: ".".join(labels), _LABEL, _LABEL, st.sampled_from(["com", "io", "internal"])),
    st.ip_addresses(v=4).filter(lambda ip: not ip.is_loopback).map(str),
)


class _Gateway(BaseHTTPRequestHandler):
    """An application's gateway: records the Authorization header of every request it gets, answers 502."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        self.send_response(502)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[str]]]:
    seen: ClassVar[list[str]] = []
    handler = type("Gateway", (_Gateway,), {"seen": seen})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_admin_key_never_goes_to_the_applications_openai_base_url(
    world: RotationWorld, cli: Cli, gateway: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an operator's shell where OPENAI_BASE_URL points at the applications' gateway,
    # and keyrot's own variable at OpenAI (the stand-in)
    url, seen = gateway
    rotated(world, "chat-backend")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    # WHEN a command that uses the admin key runs
    result = cli("audit", "--env", "dev")
    # THEN it talked to OpenAI, and the gateway never saw a request (nor the key)
    assert result.exit_code == 0, result.output
    assert seen == []


@given(given_url=st.sampled_from(["https://gateway.example.com/v1", "http://127.0.0.1:8080/v1"]))
def test_openai_base_url_alone_never_changes_the_endpoint(given_url: str) -> None:
    # GIVEN only OPENAI_BASE_URL in the environment, THEN the endpoint is OpenAI's API
    assert endpoint.resolve(None, {"OPENAI_BASE_URL": given_url}) == DEFAULT_OPENAI_BASE_URL


def test_the_option_beats_keyrots_variable() -> None:
    environ = {ENV_OPENAI_ADMIN_BASE_URL: "https://one.example.com/v1"}
    assert endpoint.resolve("https://two.example.com/v1/", environ) == "https://two.example.com/v1"
    assert endpoint.resolve(None, environ) == "https://one.example.com/v1"


@given(host=_REMOTE_HOSTS)
def test_plain_http_is_refused_for_any_host_but_this_machine(host: str) -> None:
    # GIVEN a host that is not loopback, WHEN it is given over http, THEN it is refused naming https
    with pytest.raises(UsageError, match="must use https"):
        endpoint.check(f"http://{host}/v1")
    # AND over https it is accepted as given
    assert endpoint.check(f"https://{host}/v1/") == f"https://{host}/v1"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/v1", "http://127.8.9.10/v1", "http://[::1]:9/v1", "http://localhost/v1"]
)
def test_plain_http_to_this_machine_is_allowed(url: str) -> None:
    assert endpoint.check(url) == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://api.openai.com/v1", "must be an https URL"),
        ("api.openai.com/v1", "must be an https URL"),
        ("https://user:secret@api.openai.com/v1", "must not carry credentials"),
        ("https://api.openai.com/v1?x=1", "must not have a query"),
        ("https://api.openai.com:port/v1", "is not a URL"),
    ],
)
def test_a_malformed_endpoint_is_a_usage_error_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem) as raised:
        endpoint.check(url)
    assert "secret@" not in str(raised.value)


def test_a_bad_keyrot_variable_is_named_in_the_error(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN keyrot's variable set to a remote plain-http endpoint
    monkeypatch.setenv(ENV_OPENAI_ADMIN_BASE_URL, "http://gateway.example.com/v1")
    # WHEN any command runs, THEN it exits 2 before doing anything, naming the variable
    result = cli("status", "--env", "dev")
    assert result.exit_code == 2
    assert f"${ENV_OPENAI_ADMIN_BASE_URL} must use https" in result.stderr


@pytest.mark.parametrize(
    ("host", "openai"),
    [
        ("api.openai.com", True),
        ("eu.api.openai.com", True),
        ("API.OPENAI.COM", True),
        ("api.openai.com.gateway.example", False),
        ("evilopenai.com", False),
        ("127.0.0.1", False),
    ],
)
def test_only_openais_own_hosts_count_as_openai(host: str, openai: bool) -> None:
    assert endpoint.is_openai(f"https://{host}/v1") is openai
    assert (endpoint.foreign_host_warning(f"https://{host}/v1") is None) is openai


def test_a_command_sending_the_admin_key_elsewhere_warns_first(world: RotationWorld, cli: Cli) -> None:
    # GIVEN the endpoint is the stand-in on 127.0.0.1 (not OpenAI's host)
    rotated(world, "chat-backend")
    # WHEN a command that uses the admin key runs
    result = cli("audit", "--env", "dev")
    # THEN stderr names the host once, and stdout stays clean for scripts
    assert result.stderr.count("warning: the OpenAI admin key will be sent to 127.0.0.1") == 1
    assert "warning" not in result.stdout


def test_a_command_that_never_calls_openai_does_not_warn(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a key (status now checks revocations at OpenAI; exec never sends the admin key anywhere)
    rotated(world, "chat-backend")
    # WHEN a command that never uses the admin key runs THEN it does not warn about where the admin key goes
    result = cli("exec", "--env", "dev", "--key", "chat-backend", "--", sys.executable, "-c", "pass")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
