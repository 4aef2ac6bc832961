"""The wheel ships the runtime only: no test harness, and no import of a library the user did not ask for.

An application that installs `keyrot` gets boto3 alone; `keyrot[cli]` adds typer and rich, `keyrot[pulumi]` the
Pulumi SDKs; the functions' own libraries (requests, tenacity, Powertools) come with `keyrot[lambda]`. The test
builds the wheel from this checkout (offline, with the locked setuptools), reads its file list and every module's
module-level imports.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(180)

# Module-level imports each part of the package may make, beyond the standard library and keyrot itself. A library
# imported inside a function (lazily, behind a clear error) is not counted: importing the module never needs it.
CORE = {"boto3", "botocore"}
# urllib3 comes with requests (and botocore); the transport reads its exception types.
LAMBDA = CORE | {"requests", "urllib3", "tenacity", "aws_lambda_powertools"}
# What an application imports with the core install (boto3 alone): these modules, and every keyrot module they
# import at module level, may import nothing beyond CORE. Everything else is the functions' runtime (LAMBDA), plus
# the CLI's and the component's own libraries.
APPLICATION_ENTRY_POINTS = ("keyrot.client",)
ALLOWED_BY_PART = {
    "keyrot/cli/": LAMBDA | {"typer", "rich", "click"},
    "keyrot/pulumi/": LAMBDA | {"pulumi", "pulumi_aws"},
}
# Import names of the distributions each extra brings (the core's dependencies are always there).
EXTRA_IMPORTS = {
    "lambda": {"requests", "tenacity", "aws_lambda_powertools"},
    "cli": {"typer", "rich", "click"},
    "pulumi": {"pulumi", "pulumi_aws"},
}
NEVER = {"moto", "openai", "yaml", "hypothesis", "jsonschema", "pytest", "lab", "tests", "bench", "infra"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO_ROOT)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path_factory.mktemp("cwd"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (built,) = out.glob("keyrot-*.whl")
    return built


@pytest.fixture(scope="module")
def members(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def _metadata(members: dict[str, bytes]) -> str:
    (name,) = [n for n in members if n.endswith(".dist-info/METADATA")]
    return members[name].decode()


def _module_level_imports(source: bytes) -> set[str]:
    """Top-level package names imported at module level (including under `if`/`try`, not inside functions)."""
    tree = ast.parse(source)
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_name(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _keyrot_imports(source: bytes, modules: set[str]) -> set[str]:
    """keyrot modules imported at module level (`from keyrot.a import b`: keyrot.a, and keyrot.a.b if a module)."""
    found: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "keyrot")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "keyrot":
            found.add(node.module or "")
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    # A package's import runs its parents' __init__ too.
    with_parents = {".".join(name.split(".")[:i]) for name in found for i in range(1, name.count(".") + 2)}
    return with_parents & modules


def _application_closure(members: dict[str, bytes]) -> set[str]:
    """Paths of the modules an application's `import keyrot.client` loads."""
    paths = {_module_name(name): name for name in members if name.endswith(".py")}
    seen: set[str] = set()
    queue = [m for m in APPLICATION_ENTRY_POINTS if m in paths]
    assert queue, "keyrot.client is not in the wheel"
    while queue:
        module = queue.pop()
        if module in seen:
            continue
        seen.add(module)
        queue.extend(_keyrot_imports(members[paths[module]], set(paths)) - seen)
    return {paths[m] for m in seen}


def _allowed_for(path: str, application: set[str]) -> set[str]:
    if path in application:
        return CORE
    for prefix, allowed in ALLOWED_BY_PART.items():
        if path.startswith(prefix):
            return allowed
    return LAMBDA


def test_the_wheel_holds_only_the_keyrot_package_and_its_metadata(members: dict[str, bytes]) -> None:
    top_levels = {PurePosixPath(name).parts[0] for name in members}
    assert {t for t in top_levels if not t.endswith(".dist-info")} == {"keyrot"}
    assert "keyrot/py.typed" in members
    assert not [n for n in members if n.endswith((".pyc", ".pyo")) or "__pycache__" in n]
    assert not [n for n in members if PurePosixPath(n).name.startswith(".")]


def test_no_module_imports_a_library_its_install_does_not_bring(members: dict[str, bytes]) -> None:
    stdlib = set(sys.stdlib_module_names)
    application = _application_closure(members)
    assert "keyrot/client/__init__.py" in application
    offenders = []
    for name, data in sorted(members.items()):
        if not name.endswith(".py"):
            continue
        third_party = _module_level_imports(data) - stdlib - {"keyrot", "__future__"}
        unexpected = third_party - _allowed_for(name, application)
        if unexpected or third_party & NEVER:
            offenders.append(f"{name}: {sorted(unexpected | (third_party & NEVER))}")
    assert offenders == []


def test_the_core_install_needs_only_boto3(members: dict[str, bytes]) -> None:
    requires = [
        Requirement(line.split(":", 1)[1].strip())
        for line in _metadata(members).splitlines()
        if line.startswith("Requires-Dist:")
    ]
    core = {canonicalize_name(r.name) for r in requires if r.marker is None}
    assert core == {"boto3"}


def _extra_distributions(requires: list[Requirement], extra: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """Distributions an extra brings, following `keyrot[other]` self-references."""
    names: set[str] = set()
    for requirement in requires:
        if requirement.marker is None or not requirement.marker.evaluate({"extra": extra}):
            continue
        if canonicalize_name(requirement.name) == "keyrot":
            for other in set(requirement.extras) - seen:
                names |= _extra_distributions(requires, other, seen | {extra})
        else:
            names.add(canonicalize_name(requirement.name))
    return names


def test_each_extra_brings_the_libraries_its_modules_import(members: dict[str, bytes]) -> None:
    requires = [
        Requirement(line.split(":", 1)[1].strip())
        for line in _metadata(members).splitlines()
        if line.startswith("Requires-Dist:")
    ]
    for extra, imports in EXTRA_IMPORTS.items():
        # click comes with typer; the rest are distributions named like their import.
        expected = {canonicalize_name(i.replace("_", "-")) for i in imports} - {"click"}
        assert expected <= _extra_distributions(requires, extra), extra
    # The CLI uses the functions' OpenAI client, so it brings the lambda extra's libraries too.
    assert _extra_distributions(requires, "lambda") <= _extra_distributions(requires, "cli")


def test_the_wheel_never_ranges_so_tightly_that_users_cannot_upgrade(members: dict[str, bytes]) -> None:
    # Users install from ranges; exact pins belong to the lock, not to the wheel's metadata.
    for line in _metadata(members).splitlines():
        if line.startswith("Requires-Dist:"):
            requirement = Requirement(line.split(":", 1)[1].strip())
            assert not any(spec.operator in ("==", "===") for spec in requirement.specifier), line
