"""The shipped package and the Pulumi program type-check: mypy, run through its API with pyproject.toml's [tool.mypy]
exactly as `make lint` runs it, reports nothing; the strictness that config promises is really in force on keyrot
and infra; and the config cannot quietly stop checking one of their modules.

The first run without a cache (build/mypy_cache) reads all of pulumi_aws and takes about two minutes; later runs
reuse the cache and take seconds.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from mypy import api

# The first run without a cache takes about two minutes on a busy two-core machine; the suite's 300 s would be close.
pytestmark = pytest.mark.timeout(900)

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = REPO_ROOT / "pyproject.toml"
# The trees [tool.mypy] checks, by the package name mypy is given.
CHECKED_TREES = {"keyrot": REPO_ROOT / "lambdas" / "keyrot", "infra": REPO_ROOT / "infra"}
# mypy's last line: "Success: no issues found in N source files" or "Found E errors in F files (checked N ...)".
SOURCE_COUNT = re.compile(r"(?:in|checked) (\d+) source files?\)?\s*$")

# Code the strict config must refuse, one probe module each, as someone would write it under keyrot or infra.
PROBES = {
    "untyped_function": ("def double(value):\n    return value * 2\n", "no-untyped-def"),
    "stale_ignore": ("LIMIT: int = 3  # type: ignore[assignment]\n", "unused-ignore"),
    "any_returned": (
        "import json\n\n\ndef limits(text: str) -> dict[str, int]:\n    return json.loads(text)\n",
        "no-any-return",
    ),
    "unreachable_code": (
        "def width(text: str) -> int:\n    if isinstance(text, str):\n        return len(text)\n    return -1\n",
        "unreachable",
    ),
}


def run_mypy(config: Path) -> tuple[str, int]:
    """mypy's report and exit status for `config`. mypy runs in this process: what it changes for itself (the
    variable naming its config's folder, the garbage collector's thresholds, the recursion limit) is put back."""
    thresholds, recursion_limit = gc.get_threshold(), sys.getrecursionlimit()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MYPY_CONFIG_FILE_DIR", str(config.parent))
            stdout, stderr, status = api.run(["--config-file", str(config)])
    finally:
        gc.set_threshold(*thresholds)
        sys.setrecursionlimit(recursion_limit)
    return stdout + stderr, status


@pytest.fixture(scope="module")
def repository_report() -> tuple[str, int]:
    """One mypy run over the repository, shared by the tests that read it."""
    return run_mypy(PYPROJECT)


@pytest.fixture(scope="module")
def probe_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """mypy's report on a copy of the repository's layout that holds only the probes, in both packages, checked with
    the same pyproject.toml (its paths are relative to the file, so the copy is checked as the repository is)."""
    root = tmp_path_factory.mktemp("typed_repository")
    (root / "pyproject.toml").write_text(PYPROJECT.read_text())
    for package, tree in CHECKED_TREES.items():
        copy = root / tree.relative_to(REPO_ROOT)
        copy.mkdir(parents=True)
        (copy / "__init__.py").write_text(f'"""The {package} probes."""\n')
        for name, (source, _) in PROBES.items():
            (copy / f"{name}.py").write_text(source)
    report, _ = run_mypy(root / "pyproject.toml")
    return report


def mypy_sources(tree: Path) -> list[Path]:
    """What mypy counts as source files under a package: its .py files, and each folder without an __init__.py
    (a namespace package, such as keyrot/pulumi/data)."""
    paths = [path for path in tree.rglob("*") if "__pycache__" not in path.parts]
    folders = [path for path in paths if path.is_dir() and not (path / "__init__.py").exists()]
    return [path for path in paths if path.suffix == ".py"] + folders


def test_keyrot_and_infra_have_no_type_errors(repository_report: tuple[str, int]) -> None:
    # GIVEN the shipped package and the Pulumi program as they are now
    report, status = repository_report
    # WHEN mypy checks them with pyproject.toml's [tool.mypy] (as `make lint` does)
    # THEN it finds nothing, and a failure prints every error mypy reported
    assert status == 0, f"mypy found type errors (fix them, or see pyproject.toml's [tool.mypy]):\n{report}"


def test_every_module_of_keyrot_and_infra_is_checked(repository_report: tuple[str, int]) -> None:
    # GIVEN every Python file (and namespace folder) under lambdas/keyrot and infra
    expected = sum(len(mypy_sources(tree)) for tree in CHECKED_TREES.values())
    report, _ = repository_report
    # WHEN mypy says how many source files it checked
    counted = SOURCE_COUNT.search(report.strip().splitlines()[-1])
    # THEN none was left out (an `exclude`, or a narrower `packages`, would show here)
    assert counted is not None, f"mypy's report has no source count:\n{report}"
    assert int(counted.group(1)) == expected, f"mypy checked {counted.group(1)} source files, not {expected}"


@pytest.mark.parametrize("package", sorted(CHECKED_TREES))
@pytest.mark.parametrize("probe", sorted(PROBES))
def test_strict_config_refuses_loose_code(probe_report: str, package: str, probe: str) -> None:
    # GIVEN a module of loose code in the package, checked with the repository's own config
    _, code = PROBES[probe]
    # WHEN mypy reports on that module
    where = f"/{package}/{probe}.py:"
    lines = [line for line in probe_report.splitlines() if where in "/" + line.replace("\\", "/")]
    # THEN it refuses it with the error the strict settings promise
    assert any(line.endswith(f"[{code}]") for line in lines), f"no [{code}] for {package}/{probe}.py:\n{probe_report}"


def test_no_override_relaxes_keyrot_or_infra() -> None:
    # GIVEN pyproject.toml's per-module overrides
    overrides: list[dict[str, Any]] = tomllib.loads(PYPROJECT.read_text())["tool"]["mypy"].get("overrides", [])
    # WHEN any of them names a keyrot or infra module
    ours = [
        module
        for override in overrides
        for module in ([override["module"]] if isinstance(override["module"], str) else override["module"])
        if module.split(".", 1)[0] in CHECKED_TREES
    ]
    # THEN none does: overrides are for third-party libraries only, never a way to exempt our own code
    assert ours == [], f"[[tool.mypy.overrides]] must not relax keyrot or infra modules: {ours}"


def test_running_mypy_leaves_the_test_process_as_it_was(tmp_path: Path) -> None:
    # GIVEN this process's settings that mypy changes for its own run
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.read_text())
    for tree in CHECKED_TREES.values():
        (tmp_path / tree.relative_to(REPO_ROOT)).mkdir(parents=True)
        (tmp_path / tree.relative_to(REPO_ROOT) / "__init__.py").write_text("")
    before = (gc.get_threshold(), sys.getrecursionlimit(), os.environ.get("MYPY_CONFIG_FILE_DIR"))
    # WHEN the suite runs mypy in-process
    run_mypy(tmp_path / "pyproject.toml")
    # THEN the tests after it run with the same garbage collection, recursion limit and environment
    assert (gc.get_threshold(), sys.getrecursionlimit(), os.environ.get("MYPY_CONFIG_FILE_DIR")) == before
