"""The Lambda archive ships exactly keyrot's tracked runtime files, from the installed package, never a stray file.

Shaped like the mistakes that leak: a developer's untracked `.env` next to the code, a symlink to a credentials file,
a manifest edited to reach outside the package; and like the install that has no git checkout at all (a wheel).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.lambda_manifest import tracked_files
from keyrot.constants import MONITOR_HANDLER, ROTATION_HANDLER
from keyrot.pulumi.archive import (
    LAMBDA_MANIFEST,
    LAMBDA_REQUIREMENTS,
    PACKAGE_DIR,
    PackagingError,
    build_lambda_archive,
    read_manifest,
    runtime_manifest,
)

pytestmark = pytest.mark.timeout(180)

REPO_ROOT = Path(__file__).resolve().parents[2]
WHEELS = REPO_ROOT / "build" / "wheels"


def package_copy(tmp_path: Path) -> Path:
    """A copy of the installed package's manifest files (what any install holds), as `<tmp>/keyrot`."""
    target = tmp_path / "site" / "keyrot"
    for entry in read_manifest():
        source = PACKAGE_DIR.parent / entry
        destination = tmp_path / "site" / entry
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    return target


def names_in(archive_path: Path) -> list[str]:
    with zipfile.ZipFile(archive_path) as bundle:
        return bundle.namelist()


def test_the_manifest_lists_exactly_the_tracked_runtime_files() -> None:
    # GIVEN what git tracks under lambdas/keyrot
    # THEN the committed manifest is exactly its runtime part (regenerate with `make manifest` after adding a module)
    assert read_manifest() == runtime_manifest(tracked_files()), "run `make manifest`"
    # AND it holds the handlers and nothing of the CLI or of this deployer package
    entries = read_manifest()
    assert {"keyrot/handlers/rotate.py", "keyrot/handlers/monitor.py", "keyrot/__init__.py"} <= set(entries)
    assert not [e for e in entries if e.startswith(("keyrot/cli/", "keyrot/pulumi/"))]


def _runtime_imports(module: str, seen: set[str]) -> None:
    """Every keyrot module `module` imports, transitively (module level and inside functions), as file paths."""
    import ast

    relative = module.split(".")[1:]
    candidates = [PACKAGE_DIR.joinpath(*relative).with_suffix(".py"), PACKAGE_DIR.joinpath(*relative, "__init__.py")]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return
    entry = "keyrot/" + path.relative_to(PACKAGE_DIR).as_posix()
    if entry in seen:
        return
    seen.add(entry)
    for parent in range(1, len(relative)):  # importing a.b.c runs a/__init__ and a/b/__init__
        _runtime_imports(".".join(["keyrot", *relative[:parent]]), seen)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("keyrot"):
            _runtime_imports(node.module, seen)
            for alias in node.names:
                _runtime_imports(f"{node.module}.{alias.name}", seen)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("keyrot"):
                    _runtime_imports(alias.name, seen)


def test_every_module_the_handlers_import_is_in_the_manifest() -> None:
    # GIVEN every keyrot module any handler (every module of keyrot/handlers, each an entry point) imports, however deep
    handlers = {h.rsplit(".", 1)[0] for h in (ROTATION_HANDLER, MONITOR_HANDLER)}
    handlers |= {f"keyrot.handlers.{p.stem}" for p in (PACKAGE_DIR / "handlers").glob("*.py")}
    imported: set[str] = set()
    for handler in sorted(handlers):
        _runtime_imports(handler, imported)
    # THEN the archive carries each (a module on disk that git does not track would be missing in the Lambda:
    # `git add` it, then `make manifest`)
    missing = sorted(imported - set(read_manifest()))
    assert not missing, f"imported by the handlers but not shipped: {missing}; git add them, then make manifest"


def test_an_untracked_file_in_the_package_never_ships(tmp_path: Path) -> None:
    # GIVEN the package with files nobody committed: a developer's .env and a scratch module
    package = package_copy(tmp_path)
    (package / ".env").write_text("OPENAI_ADMIN_KEY=not-a-real-key\n")
    (package / "handlers" / "scratch.py").write_text("DEBUG = True\n")
    # WHEN the archive is built from it
    archive = build_lambda_archive(build_dir=tmp_path / "build", wheel_cache_dir=WHEELS, package_dir=package)
    # THEN neither is in it, and everything the manifest lists is
    names = names_in(archive.path)
    assert "keyrot/.env" not in names and "keyrot/handlers/scratch.py" not in names
    assert set(read_manifest()) <= set(names)
    assert [n for n in names if n.startswith("keyrot/")] == sorted(read_manifest())


def test_a_symlinked_file_stops_the_build(tmp_path: Path) -> None:
    # GIVEN a listed module replaced by a symlink to a file outside the package (an AWS credentials file, say)
    package = package_copy(tmp_path)
    secret = tmp_path / "credentials"
    secret.write_text("[default]\naws_secret_access_key = not-real\n")
    (package / "constants.py").unlink()
    (package / "constants.py").symlink_to(secret)
    # THEN the build stops, naming the entry, rather than shipping what the link points at
    with pytest.raises(PackagingError, match=r"keyrot/constants.py: .* is a symlink"):
        build_lambda_archive(build_dir=tmp_path / "build", wheel_cache_dir=WHEELS, package_dir=package)


def test_a_symlinked_directory_stops_the_build(tmp_path: Path) -> None:
    # GIVEN a listed package directory that is a symlink to a copy elsewhere
    package = package_copy(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(package / "monitor", elsewhere)
    (package / "monitor").symlink_to(elsewhere, target_is_directory=True)
    # THEN the build stops at the first file under it
    with pytest.raises(PackagingError, match=r"keyrot/monitor/.*is a symlink"):
        build_lambda_archive(build_dir=tmp_path / "build", wheel_cache_dir=WHEELS, package_dir=package)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("keyrot/../../etc/passwd", "is not a path inside the keyrot package"),
        ("/etc/passwd", "is not a path inside the keyrot package"),
        ("other/module.py", "is not a path inside the keyrot package"),
        ("keyrot/cli/app.py", "is not a runtime file"),
        ("keyrot/pulumi/config.py", "is not a runtime file"),
        ("keyrot/monitor/__pycache__/run.cpython-311.pyc", "is not a runtime file"),
    ],
)
def test_a_manifest_reaching_outside_the_runtime_is_refused(tmp_path: Path, entry: str, message: str) -> None:
    # GIVEN a manifest someone edited by hand
    manifest = tmp_path / "lambda-files.txt"
    manifest.write_text(f"keyrot/__init__.py\n{entry}\n")
    # THEN reading it refuses the entry, naming it
    with pytest.raises(PackagingError, match=message):
        read_manifest(manifest)


def test_the_archive_builds_from_an_installed_wheel_without_a_checkout(tmp_path: Path) -> None:
    # GIVEN keyrot as a user installs it: the wheel, unpacked, far from this repository
    dist = tmp_path / "dist"
    built = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(REPO_ROOT)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = dist.glob("keyrot-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as bundle:
        bundle.extractall(site)
    data = site / "keyrot" / "pulumi" / "data"
    # THEN it carries the manifest and the Lambda's pins as package data, byte for byte
    assert (data / LAMBDA_MANIFEST.name).read_bytes() == LAMBDA_MANIFEST.read_bytes()
    assert (data / LAMBDA_REQUIREMENTS.name).read_bytes() == LAMBDA_REQUIREMENTS.read_bytes()
    assert (site / "keyrot" / "pulumi" / "plugin" / "__main__.py").is_file()
    # AND the archive built from those files is the one built from this checkout
    from_wheel = build_lambda_archive(
        build_dir=tmp_path / "a",
        wheel_cache_dir=WHEELS,
        package_dir=site / "keyrot",
        manifest_file=data / LAMBDA_MANIFEST.name,
        requirements_file=data / LAMBDA_REQUIREMENTS.name,
    )
    from_checkout = build_lambda_archive(build_dir=tmp_path / "b", wheel_cache_dir=WHEELS)
    assert from_wheel.sha256_hex == from_checkout.sha256_hex
