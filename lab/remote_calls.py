"""Record every remote call (AWS through botocore, OpenAI through requests) and crash right after the N-th.

A crash is a BaseException, like the Lambda process dying: no `except Exception` in keyrot can swallow it.
The recorded sequence drives the crash and fault matrices and the benchmarks' call counts.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import requests

_ID_SEGMENTS = (
    (re.compile(r"/projects/[^/]+"), "/projects/{project}"),
    (re.compile(r"/service_accounts/[^/]+"), "/service_accounts/{sa}"),
    (re.compile(r"/api_keys/[^/]+"), "/api_keys/{key}"),
    (re.compile(r"/models/[^/]+"), "/models/{model}"),
)


class SimulatedCrash(BaseException):
    """The process died right after a remote call succeeded."""


def openai_call_name(method: str, url: str) -> str:
    path = url.split("/v1", 1)[-1].split("?", 1)[0]
    for pattern, replacement in _ID_SEGMENTS:
        path = pattern.sub(replacement, path)
    return f"openai:{method.upper()} {path}"


class RemoteCallLog:
    """Collects call names like 'aws:PutSecretValue' and 'openai:POST /organization/projects/{project}/...'."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.crash_after: int | None = None
        self._lock = threading.Lock()

    def attach(self, boto3_client: Any) -> Any:
        """Record the client's calls (after each succeeds). Returns the client."""
        boto3_client.meta.events.register("after-call.*.*", self._after_aws_call)
        return boto3_client

    def session(self) -> requests.Session:
        """A requests session whose completed requests are recorded."""
        log = self

        class RecordingSession(requests.Session):
            def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
                response = super().request(method, url, *args, **kwargs)
                log.record(openai_call_name(str(method), str(url)))
                return response

        return RecordingSession()

    def record(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)
            crash = self.crash_after is not None and len(self.calls) == self.crash_after
        if crash:
            raise SimulatedCrash(f"crash after call {len(self.calls)}: {name}")

    def _after_aws_call(self, model: Any = None, http_response: Any = None, **_: Any) -> None:
        status = getattr(http_response, "status_code", 200)
        if status < 300:
            self.record(f"aws:{model.name}")

    def count(self, prefix: str) -> int:
        return sum(1 for call in self.calls if call.startswith(prefix))
