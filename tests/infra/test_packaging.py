"""keyrot/pulumi/archive.py: the Lambda archive is deterministic, complete and contains nothing it should not.

The first run downloads the nine pinned wheels from PyPI into build/wheels/ (about 1.6 MB); later runs reuse them
after checking their sha256 against keyrot/pulumi/data/lambda-requirements.txt.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement as PepRequirement

from infra import lambda_requirements as paths
from infra.lambda_requirements import RUNTIME_PROVIDED
from keyrot.constants import MONITOR_HANDLER, ROTATION_HANDLER
from keyrot.pulumi.archive import (
    PackagingError,
    build_lambda_archive,
    check_pure_wheel,
    fetch_wheels,
    normalize,
    parse_requirements,
)

pytestmark = pytest.mark.timeout(180)

MAX_ARCHIVE_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory):
    return build_lambda_archive(build_dir=tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def names(archive) -> list[str]:
    with zipfile.ZipFile(archive.path) as bundle:
        return bundle.namelist()


def _module_file(handler: str) -> str:
    return handler.rsplit(".", 1)[0].replace(".", "/") + ".py"


def test_same_inputs_give_byte_identical_archives(archive, tmp_path: Path) -> None:
    # WHEN the archive is built again into another directory
    again = build_lambda_archive(build_dir=tmp_path)
    # THEN the bytes, the hash and the content-addressed name are the same
    assert again.path.read_bytes() == archive.path.read_bytes()
    assert again.sha256_hex == archive.sha256_hex == hashlib.sha256(archive.path.read_bytes()).hexdigest()
    assert again.path.name == archive.path.name == f"lambda-{archive.sha256_hex}.zip"


def test_source_code_hash_is_base64_sha256(archive) -> None:
    assert base64.b64decode(archive.source_code_hash) == hashlib.sha256(archive.path.read_bytes()).digest()


def test_entries_are_sorted_with_fixed_timestamps_and_modes(archive, names: list[str]) -> None:
    assert names == sorted(names)
    assert len(names) == len(set(names))
    with zipfile.ZipFile(archive.path) as bundle:
        for info in bundle.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
            assert info.external_attr >> 16 == 0o100644, info.filename
            assert info.compress_type == zipfile.ZIP_DEFLATED


def test_archive_is_small(archive) -> None:
    assert archive.size == archive.path.stat().st_size < MAX_ARCHIVE_BYTES


def test_handlers_are_importable_paths_in_the_archive(names: list[str]) -> None:
    assert "keyrot/handlers/rotate.py" in names
    assert _module_file(ROTATION_HANDLER) in names
    assert _module_file(MONITOR_HANDLER) in names
    assert "keyrot/__init__.py" in names


def test_no_test_code_cli_or_bytecode(names: list[str]) -> None:
    assert not [n for n in names if n.startswith("lab/")]
    assert not [n for n in names if re.match(r"keyrot/cli(\.py$|/|_)", n)]
    assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__" in n]
    assert not [n for n in names if n.split("/")[0] in ("tests", "test")]
    # Nothing from the repository's own tests, and no AWS SDK (the runtime provides boto3/botocore).
    assert not [n for n in names if n.split("/")[0] in ("boto3", "botocore", "s3transfer")]


def test_every_pinned_package_is_in_the_archive(names: list[str]) -> None:
    requirements = parse_requirements(paths.LAMBDA_REQUIREMENTS.read_text())
    dist_infos = {
        normalize(n.split("/")[0].removesuffix(".dist-info").rsplit("-", 1)[0]): n.split("/")[0]
        for n in names
        if ".dist-info/" in n
    }
    for requirement in requirements:
        assert requirement.normalized in dist_infos, requirement
        assert dist_infos[requirement.normalized].endswith(f"-{requirement.version}.dist-info")
    for package in (
        "requests",
        "urllib3",
        "idna",
        "certifi",
        "charset_normalizer",
        "tenacity",
        "aws_lambda_powertools",
        "jmespath",
    ):
        assert f"{package}/__init__.py" in names, package
    assert "typing_extensions.py" in names


def test_requirements_match_the_installed_versions() -> None:
    from importlib.metadata import version

    for requirement in parse_requirements(paths.LAMBDA_REQUIREMENTS.read_text()):
        assert version(requirement.name) == requirement.version, requirement


def test_requirements_are_a_closed_set() -> None:
    # GIVEN the pinned wheels' own declared dependencies, for Python 3.14 without extras
    requirements = parse_requirements(paths.LAMBDA_REQUIREMENTS.read_text())
    wheels = fetch_wheels(requirements, paths.WHEEL_CACHE_DIR)
    environment = {**default_environment(), "python_version": "3.14", "python_full_version": "3.14.0", "extra": ""}
    pinned = {r.normalized for r in requirements}
    for wheel in wheels.values():
        with zipfile.ZipFile(wheel) as bundle:
            metadata_name = next(n for n in bundle.namelist() if n.endswith(".dist-info/METADATA"))
            metadata = Parser().parsestr(bundle.read(metadata_name).decode())
        for line in metadata.get_all("Requires-Dist") or []:
            dependency = PepRequirement(line)
            if dependency.marker is not None and not dependency.marker.evaluate(environment):
                continue
            # THEN each one is pinned too, or provided by the Lambda runtime
            assert normalize(dependency.name) in pinned | RUNTIME_PROVIDED, f"{wheel.name} needs {dependency}"


@pytest.mark.parametrize(
    "filename",
    [
        "charset_normalizer-3.5.3-cp311-cp311-manylinux_2_17_x86_64.whl",
        "pydantic_core-2.41.1-cp314-cp314-manylinux_2_17_aarch64.whl",
        "legacy-1.0-py2-none-any.whl",
        "thing-1.0-py3-abi3-any.whl",
    ],
)
def test_non_pure_wheels_are_refused(filename: str) -> None:
    with pytest.raises(PackagingError, match="not a py3-none-any wheel"):
        check_pure_wheel(filename)


def test_pure_wheels_are_accepted() -> None:
    check_pure_wheel("requests-2.34.2-py3-none-any.whl")
    check_pure_wheel("six-1.17.0-py2.py3-none-any.whl")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("requests>=2\n", "is not an exact pin"),
        ("requests==2.34.2\n", "needs exactly one --hash=sha256"),
        (
            "requests==2.34.2 --hash=sha256:" + "0" * 64 + "\nRequests==2.34.2 --hash=sha256:" + "1" * 64 + "\n",
            "pinned more than once: requests",
        ),
    ],
)
def test_loose_requirements_are_refused(text: str, message: str) -> None:
    with pytest.raises(PackagingError, match=message):
        parse_requirements(text)


def test_a_wheel_with_the_wrong_hash_is_refused(tmp_path: Path) -> None:
    # GIVEN a cached wheel that does not match its pin (tampered, or a different build)
    cache = tmp_path / "wheels"
    cache.mkdir()
    (cache / "tenacity-9.2.1-py3-none-any.whl").write_bytes(b"not the real wheel")
    requirement = parse_requirements("tenacity==9.2.1 --hash=sha256:" + "a" * 64)
    # THEN the build stops, naming the wheel
    with pytest.raises(PackagingError, match=r"tenacity-9.2.1-py3-none-any.whl: sha256 .* does not match the pin"):
        fetch_wheels(requirement, cache)
