"""Benchmark 4, cold start: handler import time in fresh interpreters against `import boto3`, and the archive size.

Every sample is a fresh subprocess timing one import. Three ways to import a handler, interleaved with the
`import boto3` baseline in a shuffled order every round:

- repo: from lambdas/, with bytecode cached (a developer machine; what an archive shipping bytecode would give);
- archive: from the extracted Lambda archive with bytecode writing off. The archive ships no .pyc and Lambda's
  /var/task is read-only, so every cold start compiles keyrot and its bundled packages from source;
- archive + bytecode: the same files with bytecode compiled beforehand, to size what shipping it would save.

boto3 always comes from the virtualenv with its bytecode, as the Lambda runtime provides it. The ratios are reported
with no target: the functions start a few times an hour at most and no user waits on them. The archive's size is
targeted (a deploy uploads it).
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench.common import BenchResult, fmt_seconds, interleaved, median, spread, stopwatch

HANDLERS = ("keyrot.handlers.rotate", "keyrot.handlers.monitor")
ARCHIVE_GOAL_BYTES = 5 * 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parents[1]
_PROBE = "import time\nt = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - t)\n"


def run(smoke: bool = False) -> BenchResult:
    result = BenchResult("cold_start", "4. Cold start", smoke=smoke)
    elapsed = stopwatch()
    rounds = 1 if smoke else 11
    with tempfile.TemporaryDirectory(prefix="keyrot-bench-") as scratch:
        archive = _build_archive(Path(scratch) / "build")
        plain = Path(scratch) / "archive"
        compiled = Path(scratch) / "archive-compiled"
        for target in (plain, compiled):
            with zipfile.ZipFile(archive.path) as bundle:
                bundle.extractall(target)
        compileall.compile_dir(str(compiled), quiet=1)
        subjects = {"import boto3": _importer("boto3", None, bytecode=True)}
        for handler in HANDLERS:
            short = handler.rsplit(".", 1)[1]
            subjects[f"{short}: repo"] = _importer(handler, REPO_ROOT / "lambdas", bytecode=True)
            subjects[f"{short}: archive"] = _importer(handler, plain, bytecode=False)
            subjects[f"{short}: archive + bytecode"] = _importer(handler, compiled, bytecode=True)
        for subject in subjects.values():
            subject()  # warm the OS file cache and the repo's bytecode; not a sample
        samples = interleaved(subjects, rounds)
        archive_size = archive.size
        entries = _archive_breakdown(archive.path)
    _report(result, samples, archive_size, entries, rounds)
    result.seconds = elapsed()
    return result


def _build_archive(build_dir: Path) -> object:
    """The Lambda archive exactly as the Pulumi program builds it (keyrot.pulumi.archive), into a scratch directory
    (wheels from the repository's cache, build/wheels)."""
    from keyrot.pulumi.archive import build_lambda_archive

    return build_lambda_archive(build_dir=build_dir, wheel_cache_dir=REPO_ROOT / "build" / "wheels")


def _importer(module: str, path: Path | None, *, bytecode: bool) -> object:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    code = _PROBE.format(module=module)

    def sample() -> float:
        done = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
            [sys.executable, "-c", code],
            env=env,
            cwd=tempfile.gettempdir(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"importing {module} failed:\n{done.stderr[-2000:]}")
        return float(done.stdout.strip().splitlines()[-1])

    return sample


def _archive_breakdown(path: Path) -> dict[str, int]:
    """Compressed bytes per top-level entry of the archive (package or module)."""
    sizes: dict[str, int] = {}
    with zipfile.ZipFile(path) as bundle:
        for info in bundle.infolist():
            top = info.filename.split("/", 1)[0]
            if top.endswith(".dist-info"):
                top = "*.dist-info"
            sizes[top] = sizes.get(top, 0) + info.compress_size
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


def _report(
    result: BenchResult, samples: dict[str, list[float]], archive_size: int, entries: dict[str, int], rounds: int
) -> None:
    medians = {name: median(values) for name, values in samples.items()}
    baseline = medians["import boto3"]
    low, high = spread(samples["import boto3"])
    result.row(
        f"import boto3 alone (median of {rounds} fresh interpreters)",
        f"{fmt_seconds(baseline)} (IQR {fmt_seconds(low)}–{fmt_seconds(high)})",
    )
    ratios = {}
    for name, value in medians.items():
        if name == "import boto3":
            continue
        ratio = value / baseline
        ratios[name] = ratio
        # Reported, no target: the functions start a few times an hour at most and nobody waits on them.
        result.row(f"import {name}", f"{fmt_seconds(value)} = {ratio:.2f}× boto3")
    result.target(
        "Lambda archive size",
        f"{archive_size / 2**20:.2f} MiB ({archive_size:,} bytes)",
        f"< {ARCHIVE_GOAL_BYTES / 2**20:.0f} MiB",
        archive_size < ARCHIVE_GOAL_BYTES,
    )
    top = ", ".join(f"{name} {size / 2**10:.0f} KiB" for name, size in list(entries.items())[:5])
    result.row("largest archive entries (compressed)", top)
    result.figures = {
        "rounds": rounds,
        "median_import_seconds": medians,
        "iqr_import_seconds": {name: spread(values) for name, values in samples.items()},
        "ratio_to_boto3": ratios,
        "archive_bytes": archive_size,
        "archive_entries_bytes": entries,
        "python": sys.version.split()[0],
    }
    result.notes.append(
        "Cold start: 'archive' is what Lambda does today (no .pyc shipped, /var/task read-only: keyrot, Powertools, "
        "requests, urllib3 and the rest are compiled from source on every cold start); 'archive + bytecode' shows "
        "what shipping .pyc compiled by the runtime's Python (3.14) would give. Measured with Python "
        f"{sys.version.split()[0]}, not the runtime's 3.14."
    )
