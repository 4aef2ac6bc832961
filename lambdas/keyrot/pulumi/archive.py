"""Build the Lambda archive: keyrot's own runtime files plus the pinned pure-Python wheels, as a deterministic zip.

A plain function, not a component: it owns no cloud resource. The same inputs give a byte-identical zip (sorted
entries, fixed timestamps and permissions, no bytecode), so `pulumi preview` shows no code change unless the code or
a pin really changed.

keyrot's files come from the installed package itself (no git checkout is assumed), and only those the manifest
`keyrot/pulumi/data/lambda-files.txt` lists: the runtime's tracked source files (tests/infra holds it equal to
`git ls-files`). A file the manifest does not name (an untracked `.env`, an editor backup) is never shipped, and a
listed path that is a symlink, or leads out of the package, stops the build.

Wheels come from `pip download` for Python 3.14 / any platform into a cache (default `~/.cache/keyrot/wheels`).
Every pin in `keyrot/pulumi/data/lambda-requirements.txt` carries a sha256; cached and downloaded wheels are checked
against it, and anything that is not a pure-Python (`py3-none-any`) wheel is refused, because the function runs on
arm64 and nothing compiled on this machine would load there.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import keyrot

# The installed `keyrot` package directory, and the files shipped with this module.
PACKAGE_DIR = Path(keyrot.__file__).resolve().parent
DATA_DIR = Path(__file__).resolve().parent / "data"
LAMBDA_REQUIREMENTS = DATA_DIR / "lambda-requirements.txt"
LAMBDA_MANIFEST = DATA_DIR / "lambda-files.txt"
# The Lambda runtime (python3.14) is what the wheels must suit.
TARGET_PYTHON_VERSION = "3.14"
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
# Regular file, rw-r--r--. Lambda only needs to read the code.
ZIP_FILE_MODE = 0o100644 << 16
# Never in the archive: the operator CLI and this deployer package (subpackages of keyrot), bytecode, caches.
EXCLUDED_PACKAGE_PREFIXES = ("cli", "pulumi")
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
# Test suites some wheels ship at their top level.
EXCLUDED_WHEEL_TOP_LEVEL = ("tests", "test")

_COMMENT = re.compile(r"(^|\s)#.*$")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!_-]+)$")
_HASH = re.compile(r"^--hash=sha256:(?P<digest>[0-9a-f]{64})$")
_WHEEL = re.compile(
    r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[A-Za-z0-9_.+!]+)(?:-(?P<build>\d[^-]*))?"
    r"-(?P<python>[^-]+)-(?P<abi>[^-]+)-(?P<platform>[^-]+)\.whl$"
)


class PackagingError(Exception):
    """The Lambda archive cannot be built as pinned."""


@dataclass(frozen=True)
class Requirement:
    name: str
    version: str
    sha256: str

    @property
    def normalized(self) -> str:
        return normalize(self.name)


@dataclass(frozen=True)
class LambdaArchive:
    path: Path
    sha256_hex: str
    size: int

    @property
    def source_code_hash(self) -> str:
        """Base64 of the sha256 digest: the form `aws.lambda_.Function(source_code_hash=...)` expects."""
        return base64.b64encode(bytes.fromhex(self.sha256_hex)).decode("ascii")


def normalize(name: str) -> str:
    """PEP 503 name normalisation (`Typing_Extensions` and `typing-extensions` are one project)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirements(text: str) -> list[Requirement]:
    """Exact pins with one sha256 each; anything looser is refused."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append((pending + line).strip())
        pending = ""
    if pending.strip():
        logical.append(pending.strip())

    requirements: list[Requirement] = []
    for entry in logical:
        spec, *options = entry.split()
        pin = _PIN.match(spec)
        if not pin:
            raise PackagingError(f"lambda-requirements.txt: {spec!r} is not an exact pin (name==version)")
        digests = [m.group("digest") for m in (_HASH.match(o) for o in options) if m]
        if len(digests) != 1 or len(options) != 1:
            raise PackagingError(f"lambda-requirements.txt: {spec} needs exactly one --hash=sha256:<digest>")
        requirements.append(Requirement(pin.group("name"), pin.group("version"), digests[0]))
    names = [r.normalized for r in requirements]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PackagingError(f"lambda-requirements.txt: pinned more than once: {', '.join(duplicates)}")
    return requirements


def check_pure_wheel(filename: str) -> None:
    """Refuse any wheel that is not pure Python 3 (`py3-none-any`, or the equivalent `py2.py3-none-any`)."""
    match = _WHEEL.match(filename)
    if not match:
        raise PackagingError(f"{filename}: not a wheel file name")
    pythons = match.group("python").split(".")
    if "py3" not in pythons or match.group("abi") != "none" or match.group("platform") != "any":
        raise PackagingError(
            f"{filename}: not a py3-none-any wheel; the function runs on arm64 and only pure-Python wheels are "
            "packaged. Pin a version that publishes a pure wheel, or drop the package."
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_wheel(name: str, version: str, cache_dir: Path) -> Path | None:
    """The wheel of exactly `name==version` in the cache, if one is there."""
    for candidate in sorted(cache_dir.glob("*.whl")):
        match = _WHEEL.match(candidate.name)
        if match and normalize(match.group("name")) == normalize(name) and match.group("version") == version:
            return candidate
    return None


def download_wheels(pins: Iterable[tuple[str, str]], cache_dir: Path, *, pip: tuple[str, ...] | None = None) -> None:
    """`pip download` the pure-Python wheels of (name, version) pins for the Lambda runtime into the cache."""
    pins = list(pins)
    if not pins:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    command = [
        *(pip or (sys.executable, "-m", "pip")),
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        "any",
        "--implementation",
        "py",
        "--abi",
        "none",
        "--python-version",
        TARGET_PYTHON_VERSION,
        "--dest",
        str(cache_dir),
        *(f"{name}=={version}" for name, version in pins),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        raise PackagingError(
            "pip download failed for "
            + ", ".join(f"{name}=={version}" for name, version in pins)
            + ":\n"
            + (result.stderr or result.stdout)[-2000:]
        )


def fetch_wheels(
    requirements: Iterable[Requirement], cache_dir: Path, *, pip: tuple[str, ...] | None = None
) -> dict[str, Path]:
    """Return {normalized name: wheel path}, downloading missing wheels; every wheel is hash- and tag-checked."""
    requirements = list(requirements)
    cache_dir.mkdir(parents=True, exist_ok=True)
    missing = [(r.name, r.version) for r in requirements if cached_wheel(r.name, r.version, cache_dir) is None]
    download_wheels(missing, cache_dir, pip=pip)
    wheels: dict[str, Path] = {}
    for requirement in requirements:
        wheel = cached_wheel(requirement.name, requirement.version, cache_dir)
        if wheel is None:
            raise PackagingError(f"no wheel for {requirement.name}=={requirement.version} in {cache_dir}")
        check_pure_wheel(wheel.name)
        actual = sha256_file(wheel)
        if actual != requirement.sha256:
            raise PackagingError(
                f"{wheel.name}: sha256 {actual} does not match the pin {requirement.sha256} in lambda-requirements.txt"
            )
        wheels[requirement.normalized] = wheel
    return wheels


def is_runtime_file(relative: str) -> bool:
    """Whether `relative` (a path under the keyrot package, e.g. `monitor/run.py`) belongs in the Lambda archive."""
    parts = PurePosixPath(relative).parts
    if not parts or "__pycache__" in parts or relative.endswith(EXCLUDED_SUFFIXES):
        return False
    return not _is_excluded_top_level(parts[0])


def runtime_manifest(tracked: Iterable[str], *, package_prefix: str = "lambdas/keyrot/") -> list[str]:
    """The manifest for a set of tracked repository paths: the keyrot runtime files, as `keyrot/<path>`, sorted."""
    entries = {
        "keyrot/" + path[len(package_prefix) :]
        for path in tracked
        if path.startswith(package_prefix) and is_runtime_file(path[len(package_prefix) :])
    }
    return sorted(entries)


def render_manifest(entries: Iterable[str]) -> str:
    header = (
        "# keyrot's own files in the Lambda archive (keyrot.pulumi.archive), and only these.\n"
        "# GENERATED by `make manifest` from `git ls-files lambdas/keyrot` (runtime files: no cli/, no pulumi/).\n"
    )
    return header + "".join(f"{entry}\n" for entry in entries)


def read_manifest(path: Path = LAMBDA_MANIFEST) -> list[str]:
    """The manifest's entries (`keyrot/...` paths), refusing anything that could leave the package."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        parts = PurePosixPath(entry).parts
        if entry.startswith("/") or ".." in parts or parts[0] != "keyrot" or len(parts) < 2:
            raise PackagingError(f"{path.name}: {entry!r} is not a path inside the keyrot package")
        if not is_runtime_file("/".join(parts[1:])):
            raise PackagingError(f"{path.name}: {entry!r} is not a runtime file (cli, pulumi and bytecode never ship)")
        entries.append(entry)
    return entries


def _package_entries(package_dir: Path, manifest: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """Exactly the manifest's files, read from `package_dir` (the `keyrot` directory), never through a symlink."""
    root = package_dir.resolve()
    for entry in manifest:
        relative = PurePosixPath(entry).relative_to("keyrot")
        path = package_dir.joinpath(*relative.parts)
        current = package_dir
        for part in relative.parts:
            current = current / part
            if current.is_symlink():
                raise PackagingError(f"{entry}: {current} is a symlink; the archive never follows one")
        if not path.is_file():
            raise PackagingError(f"{entry} is listed in the manifest but is not a file in {package_dir}")
        if not path.resolve().is_relative_to(root):
            raise PackagingError(f"{entry} resolves outside {package_dir}")
        yield entry, path.read_bytes()


def _is_excluded_top_level(name: str) -> bool:
    """`cli`, `cli.py`, `cli_*`, `pulumi`...: the operator CLI and the deployer package (not, say, `client.py`)."""
    return any(name == p or name.startswith((p + ".", p + "_")) for p in EXCLUDED_PACKAGE_PREFIXES)


def _wheel_entries(wheel: Path) -> Iterator[tuple[str, bytes]]:
    """A wheel's installed layout: its top level as is, `*.data/purelib|platlib` unpacked to the top level."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename
            parts = PurePosixPath(name).parts
            if ".." in parts or name.startswith("/"):
                raise PackagingError(f"{wheel.name}: unsafe path {name!r}")
            if parts[0].endswith(".data"):
                if len(parts) > 2 and parts[1] in ("purelib", "platlib"):
                    parts = parts[2:]
                else:
                    continue  # scripts, headers, data: nothing a Lambda imports
            if parts[0] in EXCLUDED_WHEEL_TOP_LEVEL or "__pycache__" in parts:
                continue
            if name.endswith(EXCLUDED_SUFFIXES):
                continue
            yield PurePosixPath(*parts).as_posix(), archive.read(info)


def collect_entries(package_dir: Path, manifest: Iterable[str], wheels: Mapping[str, Path]) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    sources: dict[str, str] = {}
    streams = [("keyrot", _package_entries(package_dir, manifest))]
    streams += [(wheel.name, _wheel_entries(wheel)) for _, wheel in sorted(wheels.items())]
    for source, stream in streams:
        for name, data in stream:
            if name in entries and entries[name] != data:
                raise PackagingError(f"{name} is provided by both {sources[name]} and {source}")
            entries[name] = data
            sources[name] = source
    return entries


def deterministic_zip(entries: Mapping[str, bytes]) -> bytes:
    """Sorted entries, 1980-01-01 timestamps, fixed mode and compression: same entries, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ZIP_FILE_MODE
            info.create_system = 3  # unix, whatever machine builds it
            archive.writestr(info, entries[name], compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def default_cache_dir() -> Path:
    """Where archives and wheels go unless the caller says: `$XDG_CACHE_HOME/keyrot`, else `~/.cache/keyrot`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "keyrot"


def build_lambda_archive(
    *,
    build_dir: Path | None = None,
    wheel_cache_dir: Path | None = None,
    package_dir: Path = PACKAGE_DIR,
    manifest_file: Path = LAMBDA_MANIFEST,
    requirements_file: Path = LAMBDA_REQUIREMENTS,
) -> LambdaArchive:
    """Build `<build_dir>/lambda-<sha256>.zip` (or reuse it when the same bytes are already there) and describe it.

    `build_dir` defaults to `default_cache_dir()`; the wheel cache to `<build_dir>/wheels`.
    """
    build_dir = build_dir if build_dir is not None else default_cache_dir()
    wheel_cache_dir = wheel_cache_dir if wheel_cache_dir is not None else build_dir / "wheels"
    requirements = parse_requirements(requirements_file.read_text(encoding="utf-8"))
    wheels = fetch_wheels(requirements, wheel_cache_dir)
    data = deterministic_zip(collect_entries(package_dir, read_manifest(manifest_file), wheels))
    digest = hashlib.sha256(data).hexdigest()
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / f"lambda-{digest}.zip"
    if not target.exists() or sha256_file(target) != digest:
        scratch = target.with_suffix(f".zip.{os.getpid()}.tmp")
        scratch.write_bytes(data)
        scratch.replace(target)
    return LambdaArchive(path=target, sha256_hex=digest, size=len(data))
