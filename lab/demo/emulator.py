"""The AWS side of the rehearsal: moto's server on 127.0.0.1, with Secrets Manager rotation done as AWS does it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import requests

REGION = "us-east-1"
# The account of the dev stack in Pulumi.dev.yaml, so the stack's own configuration applies unchanged.
ACCOUNT = "111111111111"
# Fake credentials: the emulator accepts anything, and nothing here can reach AWS.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "rehearsal", "AWS_SECRET_ACCESS_KEY": "rehearsal", "AWS_SESSION_TOKEN": "rehearsal"}


@dataclass
class AwsEmulator:
    endpoint_url: str
    rotation: Any  # lab.rotation_service.RotationService

    def client(self, service: str) -> Any:
        import boto3

        session = boto3.session.Session(region_name=REGION)
        return session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def process_environment(self) -> dict[str, str]:
        """What a process (CLI, application, Lambda worker) needs to talk to the emulator and nothing else."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "NO_PROXY": "127.0.0.1,localhost",
        }


@contextmanager
def running_emulator() -> Iterator[AwsEmulator]:
    """Start moto's server in this process (so the rotation service can be installed into its backends).

    The process environment it sets (moto's account, fake credentials, the region) is restored when it stops, so a
    rehearsal run inside a test session leaves later tests' moto account and credentials as they were."""
    saved = dict(os.environ)
    try:
        with _emulator() as emulator:
            yield emulator
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _emulator() -> Iterator[AwsEmulator]:
    os.environ["MOTO_ACCOUNT_ID"] = ACCOUNT
    os.environ.update(CREDENTIALS)
    os.environ["AWS_DEFAULT_REGION"] = REGION
    for name in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL") or name == "AWS_PROFILE"]:
        del os.environ[name]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    from lab.moto_gaps import patched_moto
    from lab.rotation_service import RotationService, installed

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        # moto's backends live in this process: start empty, whatever an earlier emulator (or test) left in them
        requests.post(f"http://{host}:{port}/moto-api/reset", timeout=10).raise_for_status()
        with ExitStack() as stack:
            stack.enter_context(patched_moto())
            service = stack.enter_context(installed(RotationService(attempts=2)))
            yield AwsEmulator(endpoint_url=f"http://{host}:{port}", rotation=service)
    finally:
        server.stop()
