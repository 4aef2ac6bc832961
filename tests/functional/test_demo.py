"""`make demo` runs end to end: the rehearsal passes every one of its checks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_rehearsal_passes_end_to_end() -> None:
    # GIVEN a clean environment: no AWS credentials or endpoints of the caller leak into the rehearsal
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYROT_", "OPENAI_", "MOTO_"))}
    # WHEN the README's first command runs
    result = subprocess.run(
        [sys.executable, "-m", "keyrot.testing.demo"], capture_output=True, text=True, env=env, timeout=230, check=False
    )
    # THEN it exits 0, every narrated check held, and nothing printed a key
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Rehearsal passed" in result.stdout
    assert "✗" not in result.stdout
    assert "requests failed (target 0)" in result.stdout
    for line in result.stdout.splitlines():
        assert "sk-" not in line, "key-shaped text in the rehearsal output"
