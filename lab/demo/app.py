"""An application on the official OpenAI SDK, built with `keyrot.client.openai_client`, sending requests until stopped.

    python -m lab.demo.app [SECRET_ID]                  # the playground: a line a second until Ctrl-C
    python -m lab.demo.app SECRET_ID --stats F --stop S  # the rehearsal: figures to F, stops when S appears

It never sees a key: the client reads it from Secrets Manager (AWS_ENDPOINT_URL, the emulator) and refreshes it
before its TTL ends or at once when OpenAI rejects it. The OpenAI endpoint is the SDK's own OPENAI_BASE_URL (or
--base-url). Every request is counted; a request counts as failed only if it finally failed (SDK retries off).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import openai

from keyrot.client import KeyProvider, openai_client

DEFAULT_SECRET = "keyrot/dev/chat-backend"  # noqa: S105 - a secret's name
# Compressed like the rehearsal's grace period (10 s): a 5-minute TTL against a 6-hour grace in production.
# `--ttl 300` (KeyProvider's default) shows an application surviving an emergency rotation through rejection alone.
DEFAULT_TTL_SECONDS = 1.0


class Stats:
    """What the application did: requests sent and failed, the errors, and the keys it moved through."""

    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.key_ids: list[str] = []
        self.burst = 0

    def record(self, error: str | None, key_id: str | None) -> None:
        self.sent += 1
        if error is not None:
            self.failed += 1
            self.errors[error] = self.errors.get(error, 0) + 1
        if key_id and (not self.key_ids or self.key_ids[-1] != key_id):
            self.key_ids.append(key_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "errors": self.errors,
            "key_ids": self.key_ids,
            "burst": self.burst,
        }


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab.demo.app", description=__doc__.split("\n")[0])
    parser.add_argument("secret_id", nargs="?", default=DEFAULT_SECRET, help=f"default: {DEFAULT_SECRET}")
    parser.add_argument("--base-url", default=None, help="OpenAI endpoint (default: $OPENAI_BASE_URL)")
    parser.add_argument("--ttl", type=float, default=DEFAULT_TTL_SECONDS, help="key cache TTL in seconds")
    parser.add_argument("--stats", type=Path, help="write figures here as JSON (the rehearsal reads them)")
    parser.add_argument("--stop", type=Path, help="stop when this file appears; STOP.burst sends a burst")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.base_url is None and not os.environ.get("OPENAI_BASE_URL"):
        print("error: no OpenAI endpoint: set OPENAI_BASE_URL (see `python -m lab.sandbox env`)", file=sys.stderr)
        return 2
    provider = KeyProvider(args.secret_id, ttl_seconds=args.ttl, rejection_refresh_interval_seconds=0.5)
    client = openai_client(provider, base_url=args.base_url, max_retries=0, timeout=10)
    stats, stopping = Stats(), _Stopping()
    playground = args.stop is None
    if playground:
        print(f"sending requests with the key in {args.secret_id} (cache TTL {args.ttl:g} s); Ctrl-C stops")
    last_write = last_line = 0.0
    while not stopping.now(args.stop):
        for _ in range(_burst(args.stop, stats)):
            stats.record(_one_request(client), provider.key_id)
        if args.stats and time.monotonic() - last_write > 0.5:
            _write(args.stats, stats)
            last_write = time.monotonic()
        if playground and time.monotonic() - last_line >= 1.0:
            print(_progress(stats), flush=True)
            last_line = time.monotonic()
        time.sleep(0.02)
    if args.stats:
        _write(args.stats, stats)
    if playground:
        print(f"stopped: {_progress(stats)}; keys served: {' → '.join(stats.key_ids) or 'none'}")
    return 0


def _one_request(client: Any) -> str | None:
    """One chat completion; the name of the error if it finally failed, else None."""
    try:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "summarise the weather today"}]
        )
    except openai.OpenAIError as exc:
        return type(exc).__name__
    return None


def _burst(stop: Path | None, stats: Stats) -> int:
    """How many requests to send now: 1, or the burst the rehearsal asked for in STOP.burst."""
    if stop is None:
        return 1
    burst = Path(f"{stop}.burst")
    if not burst.exists():
        return 1
    count = int(burst.read_text() or "1")
    burst.unlink()
    stats.burst += count
    return count


def _progress(stats: Stats) -> str:
    errors = ", ".join(f"{name} ×{count}" for name, count in stats.errors.items())
    key = stats.key_ids[-1] if stats.key_ids else "none yet"
    return (
        f"{time.strftime('%H:%M:%S')}  sent {stats.sent}  failed {stats.failed}"
        + (f" ({errors})" if errors else "")
        + f"  key {key}"
    )


class _Stopping:
    """Stop on SIGTERM or Ctrl-C (between requests), or when the rehearsal's stop file appears."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._request)
        signal.signal(signal.SIGINT, self._request)

    def _request(self, *_: Any) -> None:
        self.requested = True

    def now(self, stop: Path | None) -> bool:
        return self.requested or (stop is not None and stop.exists())


def _write(path: Path, stats: Stats) -> None:
    temporary = path.with_name(f"{path.name}.tmp")
    temporary.write_text(json.dumps(stats.to_json()))
    os.replace(temporary, path)


if __name__ == "__main__":
    sys.exit(main())
