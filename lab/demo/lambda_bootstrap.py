"""A tiny Lambda runtime, run as a script in its own process: `python lambda_bootstrap.py ARCHIVE_DIR HANDLER`.

It imports the handler from the extracted Lambda archive (first on sys.path, as in Lambda), reads one JSON event
per line on stdin and answers one JSON line per event on the original stdout. Everything the function prints (its
JSON logs and EMF metrics) goes to stderr, which the parent forwards to CloudWatch Logs; an END line after each
invocation (not forwarded) tells the parent it has every line of it. It imports nothing from the keyrot checkout on
purpose: only the archive's code runs.
"""

import importlib
import json
import os
import sys
import time
import traceback

# Written to stderr after each invocation; lambda_runtime.END_MARKER is the same text.
END_MARKER = "\x1ekeyrot-rehearsal: END of invocation"


class Context:
    """The parts of Lambda's context object keyrot uses."""

    def __init__(self, function_name: str, timeout_seconds: float) -> None:
        self.function_name = function_name
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    archive, handler_path = sys.argv[1], sys.argv[2]
    sys.path.insert(0, archive)
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the function's prints go to stderr (its log stream)
    sys.stdout = sys.stderr
    module_name, function_name = handler_path.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
    loaded_from = sys.modules["keyrot"].__file__
    protocol.write(json.dumps({"ready": True, "keyrot": loaded_from}) + "\n")
    timeout = float(os.environ.get("KEYROT_DEMO_TIMEOUT_SECONDS", "120"))
    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
    for line in sys.stdin:
        event = json.loads(line)
        try:
            result = handler(event, Context(name, timeout))
            reply = {"ok": True, "result": result}
        except Exception as exc:  # noqa: BLE001 - reported to the caller, as Lambda reports a function error
            traceback.print_exc()
            reply = {"ok": False, "error_type": type(exc).__name__, "error": str(exc)[:500]}
        # The invocation's last log line, as Lambda's END line: the parent forwards everything before it (EMF
        # included) before it returns the reply, however late its reader thread runs.
        sys.stderr.write(END_MARKER + "\n")
        sys.stderr.flush()
        protocol.write(json.dumps(reply, default=str) + "\n")


if __name__ == "__main__":
    main()
