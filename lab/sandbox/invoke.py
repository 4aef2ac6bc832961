"""Lambda's Invoke API in the emulator, answered by the function's worker (moto would need Docker to run it).

With this installed in the sandbox's process, `aws lambda invoke --function-name keyrot-dev-monitor out.json` and a
boto3 `invoke` run the function from its built archive, as Lambda would, from any process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from lab.demo.lambda_runtime import FunctionError, LambdaWorker


@contextmanager
def invocations_routed_to(workers: Mapping[str, LambdaWorker]) -> Iterator[None]:
    """While open, an Invoke of a function named in `workers` runs in that worker; any other goes to moto."""
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.invoke

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        worker = workers.get(self.function_name)
        if worker is None:
            return original(self, body, request_headers, response_headers)
        event = json.loads(body) if body else {}
        try:
            result = worker.invoke(event)
        except FunctionError as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            error_type, _, message = str(exc).partition(": ")
            return json.dumps({"errorType": error_type, "errorMessage": message}).encode()
        return json.dumps(result, default=str).encode()

    LambdaFunction.invoke = invoke  # type: ignore[method-assign]
    try:
        yield
    finally:
        LambdaFunction.invoke = original  # type: ignore[method-assign]
