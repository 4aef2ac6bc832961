"""The rehearsal's application: the official OpenAI SDK with KeyProvider, sending requests until told to stop.

    python -m lab.demo.app SECRET_ID OPENAI_BASE_URL STATS_FILE STOP_FILE

It never sees a key directly: KeyProvider reads it from Secrets Manager (the emulator) and refreshes it. Every
request is counted; a request counts as failed only if it finally failed. It writes its figures to STATS_FILE
(twice a second and at exit) and stops when STOP_FILE appears.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import openai

from keyrot.client import KeyProvider, with_key_refresh


def main(argv: list[str]) -> int:
    secret_id, base_url, stats_file, stop_file = argv
    provider = KeyProvider(secret_id, ttl_seconds=1.0, rejection_refresh_interval_seconds=0.5)
    http = openai.DefaultHttpxClient(event_hooks={"response": [provider.response_hook]})
    client = openai.OpenAI(api_key=provider, base_url=base_url, max_retries=0, http_client=http, timeout=10)
    stats: dict[str, Any] = {"sent": 0, "failed": 0, "errors": {}, "key_ids": [], "burst": 0}
    last_write = 0.0
    while not Path(stop_file).exists():
        burst = Path(stop_file + ".burst")
        count = 1
        if burst.exists():
            count = int(burst.read_text() or "1")
            burst.unlink()
            stats["burst"] += count
        for _ in range(count):
            stats["sent"] += 1
            try:
                with_key_refresh(
                    provider,
                    lambda: client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "summarise the weather today"}]
                    ),
                )
            except openai.OpenAIError as exc:
                stats["failed"] += 1
                stats["errors"][type(exc).__name__] = stats["errors"].get(type(exc).__name__, 0) + 1
            if provider.key_id and (not stats["key_ids"] or stats["key_ids"][-1] != provider.key_id):
                stats["key_ids"].append(provider.key_id)
        if time.monotonic() - last_write > 0.5:
            _write(stats_file, stats)
            last_write = time.monotonic()
        time.sleep(0.02)
    _write(stats_file, stats)
    return 0


def _write(path: str, stats: dict[str, Any]) -> None:
    temporary = f"{path}.tmp"
    Path(temporary).write_text(json.dumps(stats))
    os.replace(temporary, path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
