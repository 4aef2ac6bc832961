"""docs/deploy.md stays in step with the program: every setting in the reference, every alarm in the table."""

from __future__ import annotations

import re

import pytest
from infra_harness import REPO_ROOT, Deployment

from keyrot.pulumi.config import SETTINGS
from keyrot.pulumi.runbook import RUNBOOK_ANCHORS

pytestmark = pytest.mark.timeout(60)

DEPLOY = REPO_ROOT / "docs" / "deploy.md"


def reference_rows() -> dict[str, list[str]]:
    text = DEPLOY.read_text()
    section = text.split("## Configuration reference", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([A-Za-z]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split(" | ")]
    return rows


def test_every_setting_has_a_reference_row_with_type_default_meaning_and_validation() -> None:
    rows = reference_rows()
    assert list(rows) == [s.key for s in SETTINGS]
    for key, cells in rows.items():
        assert len(cells) == 4 and all(cells), key


def test_reference_defaults_match_the_program() -> None:
    rows = reference_rows()
    for setting in SETTINGS:
        default = rows[setting.key][1]
        if setting.kind in ("integer", "string") and setting.default is not None:
            assert default == f"`{setting.default}`", setting.key
        if setting.kind == "number":
            assert default == f"`{setting.default:g}`", setting.key
        if setting.kind == "boolean":
            assert default == f"`{str(setting.default).lower()}`", setting.key


def test_alarm_table_covers_every_alarm(dev: Deployment) -> None:
    text = DEPLOY.read_text()
    for alarm in dev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        generic = alarm.inputs["name"].replace("keyrot-dev-", "keyrot-<env>-")
        for key in ("chat-backend", "batch-embeddings"):
            generic = generic.replace(f"<env>-{key}-", "<env>-<key>-")
        assert f"`{generic}`" in text, generic
    for anchor in RUNBOOK_ANCHORS:
        assert f"(runbook.md#{anchor})" in text, anchor


def _sh_lines(text: str) -> list[str]:
    return [line for block in re.findall(r"```sh\n(.*?)```", text, re.S) for line in block.splitlines()]


def test_the_steps_list_the_operators_before_any_step_runs_the_cli() -> None:
    # GIVEN the guide's commands, in order
    text = DEPLOY.read_text()
    lines = _sh_lines(text)
    granted = [
        i for i, line in enumerate(lines) if line.startswith("pulumi config set --path 'keyrot:administratorArns")
    ]
    deployed = [i for i, line in enumerate(lines) if line.startswith("pulumi up")]
    cli = [i for i, line in enumerate(lines) if re.match(r"\s*keyrot ", line)]
    # THEN administratorArns is set while configuring, before the first deploy and the first keyrot command
    assert granted and deployed and cli
    assert granted[0] < deployed[0] < cli[0]
    step3 = text.split("## 3. Configure", 1)[1].split("\n## 4.", 1)[0]
    assert "keyrot:administratorArns:" in step3.split("```yaml", 1)[1]  # the YAML example too
    assert "(set in step 3)" in text.split("## 6.", 1)[1].split("\n## 7.", 1)[0]


def test_step_one_installs_from_the_lock_only() -> None:
    lines = _sh_lines(DEPLOY.read_text().split("## 1. Install the tools", 1)[1].split("\n## 2.", 1)[0])
    installs = [line.split("#", 1)[0].strip() for line in lines if " pip install " in line]
    assert installs == [
        ".venv/bin/python -m pip install --require-hashes -r requirements/deploy.txt",
        ".venv/bin/python -m pip install --no-deps --no-build-isolation -e .",
    ]


def test_every_logs_tail_has_the_aws_cli_v1_form_next_to_it() -> None:
    lines = _sh_lines(DEPLOY.read_text())
    for index, line in enumerate(lines):
        if line.startswith("aws logs tail"):
            group = line.split()[3]
            following = " ".join(lines[index + 1 : index + 3])
            assert f"aws logs filter-log-events --log-group-name {group} " in following, line
