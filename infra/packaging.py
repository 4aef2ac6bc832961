"""Build the Lambda archive: keyrot's own code plus the pinned pure-Python wheels, as a deterministic zip.

A plain function, not a component: it owns no cloud resource. The same inputs give a byte-identical zip (sorted
entries, fixed timestamps and permissions, no bytecode), so `pulumi preview` shows no code change unless the code or
a pin really changed.

Wheels come from `pip download` for Python 3.14 / any platform into a cache under `build/wheels/`. Every pin in
`lambdas/requirements.txt` carries a sha256; cached and downloaded wheels are checked against it, and anything that
is not a pure-Python (`py3-none-any`) wheel is refused, because the function runs on arm64 and nothing compiled on
this machine would load there.
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

from infra import paths

# The Lambda runtime (python3.14) is what the wheels must suit.
TARGET_PYTHON_VERSION = "3.14"
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
# Regular file, rw-r--r--. Lambda only needs to read the code.
ZIP_FILE_MODE = 0o100644 << 16
# Never in the archive: operator and test code, bytecode, caches.
EXCLUDED_PACKAGE_PARTS = ("__pycache__",)
EXCLUDED_PACKAGE_PREFIXES = ("cli",)
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
            raise PackagingError(f"lambdas/requirements.txt: {spec!r} is not an exact pin (name==version)")
        digests = [m.group("digest") for m in (_HASH.match(o) for o in options) if m]
        if len(digests) != 1 or len(options) != 1:
            raise PackagingError(f"lambdas/requirements.txt: {spec} needs exactly one --hash=sha256:<digest>")
        requirements.append(Requirement(pin.group("name"), pin.group("version"), digests[0]))
    names = [r.normalized for r in requirements]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PackagingError(f"lambdas/requirements.txt: pinned more than once: {', '.join(duplicates)}")
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


def download_wheels(
    pins: Iterable[tuple[str, str]], cache_dir: Path, *, pip: tuple[str, ...] | None = None
) -> None:
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
                f"{wheel.name}: sha256 {actual} does not match the pin {requirement.sha256} in lambdas/requirements.txt"
            )
        wheels[requirement.normalized] = wheel
    return wheels


def _package_entries(package_dir: Path) -> Iterator[tuple[str, bytes]]:
    """keyrot's own modules, under `keyrot/`, minus the test helpers, the operator CLI and bytecode."""
    root = package_dir.parent
    for path in sorted(package_dir.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(root)
        parts = relative.parts  # ("keyrot", ...)
        inner = parts[1:]
        if any(part in EXCLUDED_PACKAGE_PARTS for part in inner):
            continue
        if inner and _is_excluded_top_level(inner[0]):
            continue
        if path.suffix in EXCLUDED_SUFFIXES:
            continue
        yield PurePosixPath(*parts).as_posix(), path.read_bytes()


def _is_excluded_top_level(name: str) -> bool:
    """`cli`, `cli.py`, `cli_*`: the operator CLI and its helpers (but not, say, a future `client.py`)."""
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


def collect_entries(package_dir: Path, wheels: Mapping[str, Path]) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    sources: dict[str, str] = {}
    streams = [("lambdas/keyrot", _package_entries(package_dir))]
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


def build_lambda_archive(
    *,
    package_dir: Path = paths.LAMBDA_PACKAGE_DIR,
    requirements_file: Path = paths.LAMBDA_REQUIREMENTS,
    build_dir: Path = paths.BUILD_DIR,
    wheel_cache_dir: Path = paths.WHEEL_CACHE_DIR,
) -> LambdaArchive:
    """Build `build/lambda-<sha256>.zip` (or reuse it when the same bytes are already there) and describe it."""
    requirements = parse_requirements(requirements_file.read_text(encoding="utf-8"))
    wheels = fetch_wheels(requirements, wheel_cache_dir)
    data = deterministic_zip(collect_entries(package_dir, wheels))
    digest = hashlib.sha256(data).hexdigest()
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / f"lambda-{digest}.zip"
    if not target.exists() or sha256_file(target) != digest:
        scratch = target.with_suffix(f".zip.{os.getpid()}.tmp")
        scratch.write_bytes(data)
        scratch.replace(target)
    return LambdaArchive(path=target, sha256_hex=digest, size=len(data))
