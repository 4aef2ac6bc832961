"""The lock files are the only source of versions: complete, hash-checked, in step with pyproject.toml and the Lambda.

The last tests run the Makefile's own pip flags against a local wheel directory standing in for an index that
offers a newer release than the one locked: the locked version is installed, or nothing is.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra import lambda_requirements as paths
from infra.lambda_requirements import (
    LockedPin,
    lambda_roots,
    parse_lock,
    render,
    resolve_lambda_pins,
)
from keyrot.pulumi.archive import PackagingError, fetch_wheels, parse_requirements

pytestmark = pytest.mark.timeout(180)

SELF = "keyrot"
MAKEFILE = paths.REPO_ROOT / "Makefile"


def _pyproject() -> dict:
    return tomllib.loads(paths.PYPROJECT.read_text(encoding="utf-8"))


def _lock(path: Path) -> dict[str, LockedPin]:
    return parse_lock(path.read_text(encoding="utf-8"), source=path.name)


def _requirements(extras: list[str]) -> list[Requirement]:
    """pyproject.toml's requirements for the core and the given extras, self-references expanded."""
    project = _pyproject()["project"]
    wanted, seen, found = list(extras), set(), [Requirement(r) for r in project["dependencies"]]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in project["optional-dependencies"][extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == SELF:
                wanted.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def _all_extras() -> list[str]:
    return list(_pyproject()["project"]["optional-dependencies"])


def _deploy_extras() -> list[str]:
    return ["cli", "lambda", "pulumi"]


def _build_requirements() -> list[Requirement]:
    return [Requirement(r) for r in _pyproject()["build-system"]["requires"]]


def _installed_closure(roots: list[Requirement]) -> dict[str, str]:
    """{name: installed version} of roots and everything they require here, markers and extras evaluated."""
    closure: dict[str, str] = {}
    queue = [(r, frozenset(r.extras)) for r in roots]
    visited: set[tuple[str, frozenset[str]]] = set()
    while queue:
        requirement, extras = queue.pop()
        name = canonicalize_name(requirement.name)
        if (name, extras) in visited:
            continue
        visited.add((name, extras))
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"pyproject.toml needs {name}, which the lock did not install: run `make lock`")
        closure[name] = distribution.version
        for line in distribution.requires or []:
            dependency = Requirement(line)
            environments = [{**default_environment(), "extra": e} for e in (extras or {""})]
            if dependency.marker is None or any(dependency.marker.evaluate(env) for env in environments):
                queue.append((dependency, frozenset(dependency.extras)))
    return closure


# --- the locks themselves ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lock", [paths.DEV_LOCK, paths.DEPLOY_LOCK, paths.REQUIREMENTS_DIR / "lock-tools.txt"])
def test_every_entry_is_an_exact_version_with_hashes(lock: Path) -> None:
    pins = _lock(lock)
    assert pins
    for pin in pins.values():
        assert pin.hashes, pin


def test_the_lock_satisfies_every_range_pyproject_declares() -> None:
    for lock_path, extras in ((paths.DEV_LOCK, _all_extras()), (paths.DEPLOY_LOCK, _deploy_extras())):
        lock = _lock(lock_path)
        for requirement in _requirements(extras) + _build_requirements():
            name = canonicalize_name(requirement.name)
            assert name in lock, f"{lock_path.name} lacks {requirement}: run `make lock`"
            version = lock[name].version
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{lock_path.name} locks {name}=={version}, outside pyproject.toml's {requirement}: run `make lock`"
            )


def test_the_dev_lock_is_exactly_the_closure_of_pyproject() -> None:
    # GIVEN what pyproject.toml asks for (every extra and the build backend), walked through installed metadata
    closure = _installed_closure(_requirements(_all_extras()) + _build_requirements())
    lock = _lock(paths.DEV_LOCK)
    # THEN the lock holds exactly that set: nothing missing, nothing left over from a removed dependency
    assert sorted(set(closure) - set(lock)) == []
    assert sorted(set(lock) - set(closure)) == []


def test_the_deploy_lock_takes_its_versions_and_hashes_from_the_dev_lock() -> None:
    dev, deploy = _lock(paths.DEV_LOCK), _lock(paths.DEPLOY_LOCK)
    for name, pin in deploy.items():
        assert name in dev, name
        assert (pin.version, pin.hashes) == (dev[name].version, dev[name].hashes), name
    closure = _installed_closure(_requirements(_deploy_extras()) + _build_requirements())
    assert set(deploy) == set(closure)


def test_the_installed_versions_are_the_locked_ones() -> None:
    # A venv built by hand, or not rebuilt after the lock changed, fails here rather than later in odd ways.
    for name, pin in _lock(paths.DEV_LOCK).items():
        assert metadata.version(name) == pin.version, name


def test_a_lock_entry_without_a_hash_or_an_exact_version_is_refused() -> None:
    with pytest.raises(PackagingError, match="is not an exact pin"):
        parse_lock("idna>=3\n")
    with pytest.raises(PackagingError, match="needs --hash"):
        parse_lock("idna==3.21\n")
    with pytest.raises(PackagingError, match="pinned more than once"):
        parse_lock("idna==3.21 --hash=sha256:" + "a" * 64 + "\nIDNA==3.21 --hash=sha256:" + "b" * 64 + "\n")


# --- the Lambda's pins come from the lock -----------------------------------------------------------------------


def test_lambda_requirements_take_versions_and_hashes_from_the_lock() -> None:
    lock = _lock(paths.DEV_LOCK)
    for requirement in parse_requirements(paths.LAMBDA_REQUIREMENTS.read_text(encoding="utf-8")):
        locked = lock[requirement.normalized]
        assert requirement.version == locked.version, requirement
        assert requirement.sha256 in locked.hashes, requirement


def test_lambda_requirements_are_exactly_what_make_lock_renders() -> None:
    # GIVEN the committed pins and the wheels they name (downloaded and hash-checked once into build/wheels)
    text = paths.LAMBDA_REQUIREMENTS.read_text(encoding="utf-8")
    committed = parse_requirements(text)
    wheels = fetch_wheels(committed, paths.WHEEL_CACHE_DIR)

    def cached(name: str, version: str) -> Path:
        return wheels[canonicalize_name(name)]

    # WHEN the closure of the `lambda` extra is resolved against the lock, as `make lock` does
    resolved = resolve_lambda_pins(lambda_roots(_pyproject()), _lock(paths.DEV_LOCK), cached)
    # THEN it is the committed file, byte for byte
    assert render(resolved) == text


def test_a_lambda_wheel_whose_hash_the_lock_does_not_hold_is_refused(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path, "tenacity", "9.2.1")
    lock = {"tenacity": LockedPin("tenacity", "9.2.1", frozenset({"0" * 64}))}
    with pytest.raises(
        PackagingError, match=re.escape("not among the hashes requirements/dev.txt locks for tenacity==9.2.1")
    ):
        resolve_lambda_pins(["tenacity"], lock, lambda name, version: wheel)


def test_a_lambda_dependency_the_lock_lacks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        PackagingError, match=re.escape("the Lambda needs tenacity, which requirements/dev.txt does not lock")
    ):
        resolve_lambda_pins(["tenacity"], {}, lambda name, version: tmp_path)


# --- the Makefile installs from the lock, and pip keeps to it ---------------------------------------------------


def _make_variable(name: str) -> list[str]:
    match = re.search(rf"^{name}\s*:=\s*(.+)$", MAKEFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, name
    return match.group(1).split()


def test_the_makefile_installs_only_from_the_lock() -> None:
    text = MAKEFILE.read_text(encoding="utf-8")
    assert "--require-hashes" in _make_variable("PIP_LOCKED")
    assert {"--no-deps", "--no-build-isolation"} <= set(_make_variable("PIP_SELF"))
    # Every recipe line that installs uses one of the two, and the locked installs read a lock file.
    for line in text.splitlines():
        if "pip install" in line and not re.match(r"^PIP_(LOCKED|SELF)\s*:=", line):
            pytest.fail(f"Makefile installs outside PIP_LOCKED/PIP_SELF: {line.strip()}")
        if "$(PIP_LOCKED)" in line:
            assert re.search(r"-r (requirements/\S+\.txt|\$\(LOCK\))", line), line
    assert re.search(r"^\$\(STAMP\): \$\(LOCK\) pyproject.toml$", text, re.MULTILINE)


def _fake_wheel(directory: Path, name: str, version: str, payload: bytes = b"") -> Path:
    """A minimal valid pure-Python wheel."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = {
        f"{name.replace('-', '_')}/__init__.py": b"VERSION = '" + version.encode() + b"'\n" + payload,
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for path, data in files.items()
    )
    files[f"{dist}.dist-info/RECORD"] = (record + f"{dist}.dist-info/RECORD,,\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as bundle:
        for member, data in files.items():
            bundle.writestr(member, data)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pip_install_locked(lock_text: str, index: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The Makefile's locked install, against a local wheel directory only, into a scratch target."""
    lock = tmp_path / "lock.txt"
    lock.write_text(lock_text, encoding="utf-8")
    flags = [f for f in _make_variable("PIP_LOCKED") if f != "--quiet"]
    assert flags[:3] == ["-m", "pip", "install"]
    command = [sys.executable, *flags, "--no-index", "--find-links", str(index), "--target", str(tmp_path / "t")]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    environment["PIP_CONFIG_FILE"] = os.devnull
    return subprocess.run(  # noqa: S603 - fixed argv
        [*command, "-r", str(lock)], capture_output=True, text=True, env=environment, check=False
    )


def _installed_in(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "t").glob("*.dist-info")) if (tmp_path / "t").exists() else []


def test_the_locked_version_is_installed_when_the_index_offers_a_newer_one(tmp_path: Path) -> None:
    # GIVEN an index with a locked release and a newer one
    index = tmp_path / "index"
    locked = _fake_wheel(index, "drifty", "1.0")
    _fake_wheel(index, "drifty", "1.1")
    # WHEN the lock is installed the way `make test` installs it
    result = _pip_install_locked(f"drifty==1.0 \\\n    --hash=sha256:{_sha256(locked)}\n", index, tmp_path)
    # THEN the locked release is what lands
    assert result.returncode == 0, result.stderr
    assert _installed_in(tmp_path) == ["drifty-1.0.dist-info"]


def test_a_newer_transitive_release_is_never_taken_in_place_of_the_locked_one(tmp_path: Path) -> None:
    # GIVEN the real lock entry for idna (the transitive pin that drifted) and an index offering only a newer idna
    pin = _lock(paths.DEV_LOCK)["idna"]
    index = tmp_path / "index"
    _fake_wheel(index, "idna", "99.0")
    entry = f"idna=={pin.version} " + " ".join(f"--hash=sha256:{h}" for h in sorted(pin.hashes)) + "\n"
    # WHEN installing from the lock
    result = _pip_install_locked(entry, index, tmp_path)
    # THEN pip refuses rather than install 99.0
    assert result.returncode != 0
    assert f"idna=={pin.version}" in result.stderr
    assert _installed_in(tmp_path) == []


def test_a_swapped_wheel_with_the_locked_version_fails_the_hash_check(tmp_path: Path) -> None:
    # GIVEN an index serving a wheel with the locked name and version but other bytes
    pin = _lock(paths.DEV_LOCK)["idna"]
    index = tmp_path / "index"
    _fake_wheel(index, "idna", pin.version, payload=b"# tampered\n")
    entry = f"idna=={pin.version} " + " ".join(f"--hash=sha256:{h}" for h in sorted(pin.hashes)) + "\n"
    result = _pip_install_locked(entry, index, tmp_path)
    # THEN the install stops on the hash, installing nothing
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr
    assert _installed_in(tmp_path) == []


def test_a_range_is_refused_by_the_locked_install(tmp_path: Path) -> None:
    index = tmp_path / "index"
    wheel = _fake_wheel(index, "drifty", "1.1")
    result = _pip_install_locked(f"drifty>=1.0 --hash=sha256:{_sha256(wheel)}\n", index, tmp_path)
    assert result.returncode != 0
    assert "pinned with ==" in result.stderr
    assert _installed_in(tmp_path) == []
