"""Run the deployed functions from the built Lambda archive, each in its own warm worker process.

The worker gets exactly the environment variables the Pulumi program declares for the function (plus what a
process needs to reach the emulator). Its log lines go to the function's CloudWatch Logs group in the emulator,
and its EMF lines become CloudWatch metrics, as the Lambda service does with them.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyrot.redaction import scrub

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
# The line the bootstrap writes to stderr after each invocation (lambda_bootstrap.END_MARKER).
END_MARKER = "\x1ekeyrot-rehearsal: END of invocation"
# How long to wait for an invocation's log lines to arrive through the pipe before handing back its reply.
LOG_WAIT_SECONDS = 10.0


class FunctionError(RuntimeError):
    """The function raised; the message is its error type and text, as Lambda reports it."""


@dataclass
class LambdaWorker:
    name: str
    handler: str
    archive: Path
    environment: dict[str, str]
    logs: Any  # boto3 logs client for the emulator
    cloudwatch: Any
    log_group: str
    timeout_seconds: float
    loaded_from: str = ""
    invocations: int = 0
    _process: subprocess.Popen[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _extracted: tempfile.TemporaryDirectory[str] | None = None
    _log_lines: queue.Queue[str] = field(default_factory=queue.Queue)

    def start(self) -> None:
        self._extracted = tempfile.TemporaryDirectory(prefix=f"{self.name}-")
        with zipfile.ZipFile(self.archive) as archive:
            archive.extractall(self._extracted.name)
        env = {
            **self.environment,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "KEYROT_DEMO_TIMEOUT_SECONDS": str(self.timeout_seconds),
            "PYTHONUNBUFFERED": "1",
            "PATH": "/usr/bin:/bin",
        }
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, str(BOOTSTRAP), self._extracted.name, self.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        threading.Thread(target=self._pump_logs, name=f"{self.name}-logs", daemon=True).start()
        ready = json.loads(self._read_line())
        self.loaded_from = ready["keyrot"]
        self.logs.create_log_stream(logGroupName=self.log_group, logStreamName=self._stream)

    @property
    def _stream(self) -> str:
        return time.strftime("%Y/%m/%d/[$LATEST]rehearsal")

    def invoke(self, event: dict[str, Any]) -> Any:
        """Synchronous invocation; raises FunctionError when the function raised."""
        with self._lock:
            assert self._process is not None and self._process.stdin is not None
            self._process.stdin.write(json.dumps(event) + "\n")
            self._process.stdin.flush()
            reply = json.loads(self._read_line())
            self.invocations += 1
            self._flush_logs(until_end=True)
        if not reply["ok"]:
            raise FunctionError(f"{reply['error_type']}: {reply['error']}")
        return reply["result"]

    def stop(self) -> None:
        if self._process is not None:
            if self._process.stdin:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        self._flush_logs()
        if self._extracted is not None:
            self._extracted.cleanup()
            self._extracted = None

    def _read_line(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise FunctionError(f"{self.name}: the worker process exited (code {self._process.poll()})")
        return line

    def _pump_logs(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            self._log_lines.put(line.rstrip("\n"))

    def _flush_logs(self, *, until_end: bool = False) -> None:
        """Forward the log lines read so far; `until_end`: first wait (bounded) for the invocation's END marker, so
        its metrics are in CloudWatch when the reply is handed back."""
        lines = []
        deadline = time.monotonic() + LOG_WAIT_SECONDS
        while True:
            try:
                timeout = max(0.0, deadline - time.monotonic()) if until_end else 0.0
                line = self._log_lines.get(timeout=timeout) if until_end else self._log_lines.get_nowait()
            except queue.Empty:
                break
            if line == END_MARKER:
                if until_end:
                    break
                continue
            lines.append(line)
        if not lines:
            return
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": scrub(line)} for line in lines if line.strip()]
        if events:
            self.logs.put_log_events(logGroupName=self.log_group, logStreamName=self._stream, logEvents=events)
        for line in lines:
            self._extract_emf(line)

    def _extract_emf(self, line: str) -> None:
        """CloudWatch turns EMF log lines into metrics; do the same."""
        if not line.startswith("{") or '"_aws"' not in line:
            return
        document = json.loads(line)
        for directive in document["_aws"].get("CloudWatchMetrics", []):
            for dimension_set in directive.get("Dimensions", []):
                for metric in directive.get("Metrics", []):
                    value = document.get(metric["Name"])
                    values = value if isinstance(value, list) else [value]
                    self.cloudwatch.put_metric_data(
                        Namespace=directive["Namespace"],
                        MetricData=[
                            {
                                "MetricName": metric["Name"],
                                "Dimensions": [{"Name": d, "Value": str(document[d])} for d in dimension_set],
                                "Value": float(v),
                                "Unit": metric.get("Unit", "None"),
                            }
                            for v in values
                        ],
                    )
