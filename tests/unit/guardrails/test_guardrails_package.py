"""The guardrails package's shape: the Pulumi program can validate a block with the standard library alone (the
`pulumi` extra has no requests, tenacity or Powertools), every exported name resolves, and the validator's rate-limit
names are the admin client's."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import keyrot.guardrails as guardrails
from keyrot.guardrails import constants
from keyrot.openai_admin.guardrails import RATE_LIMIT_FIELDS

LAMBDAS = Path(guardrails.__file__).resolve().parents[2]


def test_the_validator_and_the_document_need_only_the_standard_library() -> None:
    # GIVEN a Python where the functions' libraries cannot be imported (as on a machine with only the pulumi extra)
    script = textwrap.dedent(
        """
        import sys
        for name in ("requests", "tenacity", "urllib3", "botocore", "boto3", "aws_lambda_powertools"):
            sys.modules[name] = None
        from keyrot.guardrails import GuardrailsConfigError, document_digest, document_json, parse_guardrails
        block = {"spendLimitUsd": 5, "rateLimits": {"gpt-4o": {"max_tokens_per_1_minute": 1}}}
        text = document_json(parse_guardrails(block))
        try:
            parse_guardrails({"spendLimitUsd": -1})
        except GuardrailsConfigError as exc:
            print(exc.problems[0].setting, document_digest(text)[:8])
        """
    )
    # WHEN the program validates a block and writes its document
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script], env={"PYTHONPATH": str(LAMBDAS)}, capture_output=True, text=True, check=False
    )
    # THEN it works
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("spendLimitUsd ")


def test_every_exported_name_resolves() -> None:
    assert sorted(guardrails.__all__) == sorted(guardrails._EXPORTS)
    for name in guardrails.__all__:
        assert getattr(guardrails, name).__name__ == name


def test_the_validators_rate_limits_are_the_admin_clients() -> None:
    assert constants.RATE_LIMIT_NAMES == RATE_LIMIT_FIELDS
