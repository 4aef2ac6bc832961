"""What a new operator reads first does not trip them: the deploy steps grant CLI access before the CLI runs, the
OpenAI console path for admin keys has one name, and log commands say which AWS CLI they need.

And what a security reviewer reads holds: every test docs/security.md names as the proof of a claim exists, every
attacker section names one, and the paths and section links of the security model and the architecture resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The pages this check covers.
PAGES = (
    "README.md",
    "docs/deploy.md",
    "docs/runbook.md",
    "docs/performance.md",
    "docs/costs.md",
    "docs/security.md",
    "docs/architecture.md",
)
# The design pages whose named paths and section links are checked.
DESIGN_PAGES = ("docs/security.md", "docs/architecture.md")
SECURITY = REPO_ROOT / "docs" / "security.md"
# `tests/...py::test_name`, as docs/security.md names the test behind a claim.
NAMED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
# The repository's top-level folders a backquoted path may start with.
TOP_LEVEL = ("lambdas/", "lab/", "tests/", "bench/", "infra/", "docs/", "requirements/")
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


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # a `#` line in a code block is no heading
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def test_every_test_the_security_model_names_exists() -> None:
    # GIVEN every `file::test` docs/security.md names as the proof of a claim
    named = NAMED_TEST.findall(SECURITY.read_text())
    assert len(named) > 50, "docs/security.md names the tests behind its claims as `tests/...py::test_name`"
    for path, test in named:
        # THEN the file exists and defines that test (a renamed or deleted test leaves its claim unproven)
        source = REPO_ROOT / path
        assert source.is_file(), f"docs/security.md names {path}, which does not exist"
        assert re.search(rf"^\s*(async )?def {test}\(", source.read_text(), re.M), (
            f"docs/security.md names {path}::{test}, which that file does not define"
        )


def test_every_attacker_section_names_the_tests_behind_it() -> None:
    # GIVEN the numbered attacker sections of docs/security.md
    sections = re.split(r"^## ", SECURITY.read_text(), flags=re.M)
    attackers = [s for s in sections if re.match(r"\d+\. ", s)]
    assert len(attackers) >= 7
    for section in attackers:
        title = section.splitlines()[0]
        # THEN each says what keyrot stops and what it cannot, and names at least one test
        assert "**What keyrot stops.**" in section and "**What keyrot cannot stop.**" in section, title
        assert NAMED_TEST.search(section), f"docs/security.md section {title!r} names no test"


@pytest.mark.parametrize("page", DESIGN_PAGES)
def test_every_repository_path_a_design_page_names_exists(page: str) -> None:
    # GIVEN every backquoted path under one of the repository's top-level folders (placeholders aside)
    text = (REPO_ROOT / page).read_text()
    paths = {
        token.split("::")[0]
        for token in re.findall(r"`([^`\s]+)`", text)
        if token.startswith(TOP_LEVEL) and not re.search(r"[<>*{}]", token)
    }
    assert paths
    # THEN each exists (a module moved since the page was written is named where it now lives)
    missing = sorted(p for p in paths if not (REPO_ROOT / p.rstrip("/")).exists())
    assert missing == [], f"{page} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", DESIGN_PAGES)
def test_every_section_link_of_a_design_page_lands_on_a_heading(page: str) -> None:
    # GIVEN every link to a section, of this page or of another page in docs/
    text = (REPO_ROOT / page).read_text()
    links = re.findall(r"\]\(([\w.-]*\.md)?#([^)]+)\)", text)
    assert links
    for target, anchor in links:
        linked = REPO_ROOT / page if not target else REPO_ROOT / "docs" / target
        # THEN the page has a heading with that anchor
        assert anchor in _anchors(linked), f"{page} links {target}#{anchor}, which is no heading of {linked.name}"
