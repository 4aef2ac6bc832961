"""What a new operator reads first does not trip them: the deploy steps grant CLI access before the CLI runs, the
OpenAI console path for admin keys has one name, and log commands say which AWS CLI they need."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The pages this check covers (docs/security.md has an owner of its own).
PAGES = ("README.md", "docs/deploy.md", "docs/runbook.md", "docs/performance.md", "docs/costs.md")
CONSOLE_PATH = "Settings → Organization → Admin keys"
OTHER_NAMES = (
    r"Organization\s*>\s*Admin keys",
    r"API keys\s*→\s*admin\s+keys",
    r"organization owner\s*→",
    r"admin keys? in the OpenAI dashboard",
)


def _deploy_steps() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Deploy\n") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the README's Deploy section has its steps in a sh block"
    return block.group(1).splitlines()


def test_the_deploy_steps_list_administrators_before_any_step_runs_the_cli() -> None:
    # GIVEN the README's deploy steps, in order
    lines = _deploy_steps()
    commands = [i for i, line in enumerate(lines) if re.match(r"\s*(\.venv/bin/)?keyrot ", line)]
    granted = [i for i, line in enumerate(lines) if "administratorArns" in line and line.startswith("pulumi config")]
    deployed = [i for i, line in enumerate(lines) if line.startswith("pulumi up")]
    # THEN the operators are listed in administratorArns in the configuration, before the deploy and the CLI
    assert commands and granted and deployed
    assert granted[0] < deployed[0] < commands[0]


@pytest.mark.parametrize("page", PAGES)
def test_the_openai_console_path_for_admin_keys_has_one_name(page: str) -> None:
    text = re.sub(r"\s+", " ", (REPO_ROOT / page).read_text().replace("**", ""))  # as rendered: one line, no bold
    for other in OTHER_NAMES:
        assert not re.search(other, text, re.I), f"{page} names the admin-key page otherwise ({other}): {CONSOLE_PATH}"
    if re.search(r"creates? (it|a new admin key)", text):
        assert CONSOLE_PATH in text, f"{page} says where admin keys are created without naming {CONSOLE_PATH}"


def test_the_runbook_says_aws_logs_tail_needs_cli_v2_and_gives_the_v1_form() -> None:
    runbook = (REPO_ROOT / "docs" / "runbook.md").read_text()
    assert "aws logs tail" in runbook
    assert re.search(r"AWS CLI \*\*version 2\*\*", runbook)
    assert "aws logs filter-log-events" in runbook
