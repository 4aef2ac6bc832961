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
