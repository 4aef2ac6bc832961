"""The rehearsal, over and over: `make demo-soak` runs `python -m lab.demo` 20 times in a row and reports how many
passed and the p50/p95 of their durations, into bench/results.json under its own key ("demo_soak").

    python -m bench.demo_soak                 # 20 runs (about 20 minutes on 2 cores)
    python -m bench.demo_soak --runs 5
    python -m bench.demo_soak --first-run     # also: a fresh clone's `make demo`, install and rehearsal timed apart

Not part of `make bench` or `make test`: it takes too long. Each run is a separate process in a session of its own,
with no AWS, OpenAI or keyrot setting of the caller; a run passes when it exits 0 and leaves no process behind.
`--first-run` clones this repository's HEAD into a temporary directory and times `make .venv/.installed` (building
the virtualenv from the lock, downloads included unless pip's cache has them) and then `make demo`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import BenchResult

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results.json"
RESULTS_KEY = "demo_soak"
RUNS = 20
RUN_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class RunOutcome:
    """One rehearsal: did it pass, how long it took (wall clock, start to exit), and what failed."""

    passed: bool
    seconds: float
    failed_checks: tuple[str, ...] = ()
    leftovers: int = 0


@dataclass
class Soak:
    runs: list[RunOutcome] = field(default_factory=list)

    @property
    def passes(self) -> int:
        return sum(run.passed for run in self.runs)

    def percentile(self, fraction: float) -> float:
        """The duration `fraction` of the runs stay under (inclusive method: within the observed range)."""
        durations = sorted(run.seconds for run in self.runs)
        if len(durations) == 1:
            return durations[0]
        cuts = statistics.quantiles(durations, n=100, method="inclusive")
        return cuts[round(fraction * 100) - 1]


def rehearse_once() -> RunOutcome:
    """`python -m lab.demo` in a session of its own, with none of the caller's cloud settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYROT_", "OPENAI_", "MOTO_"))}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "lab.demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        output, _ = process.communicate()
        return RunOutcome(False, time.perf_counter() - started, (f"timed out after {RUN_TIMEOUT_SECONDS} s",))
    seconds = time.perf_counter() - started
    failed = tuple(line.strip()[2:] for line in output.splitlines() if line.strip().startswith("✗ "))
    if process.returncode != 0 and not failed:
        failed = (f"exit {process.returncode}: {output.strip().splitlines()[-1:] or ['no output']}",)
    leftovers = len(_session_processes(process.pid))
    return RunOutcome(process.returncode == 0 and leftovers == 0, seconds, tuple(dict.fromkeys(failed)), leftovers)


def run(
    runs: int = RUNS, *, smoke: bool = False, rehearse: Callable[[], RunOutcome] = rehearse_once, say: Any = None
) -> BenchResult:
    """Rehearse `runs` times in a row (once when `smoke`); every run must pass."""
    say = say or (lambda line: print(line, flush=True))
    result = BenchResult(RESULTS_KEY, "Rehearsal soak (make demo, back to back)", smoke=smoke)
    started = time.perf_counter()
    soak = Soak()
    total = 1 if smoke else runs
    for index in range(total):
        outcome = rehearse()
        soak.runs.append(outcome)
        verdict = "passed" if outcome.passed else "FAILED: " + "; ".join(outcome.failed_checks)
        say(f"run {index + 1}/{total}: {verdict} in {outcome.seconds:.1f} s")
    result.target(
        f"rehearsals passed, {total} in a row", f"{soak.passes} of {total}", f"{total} of {total}", soak.passes == total
    )
    result.row(
        "duration p50 / p95", f"{statistics.median(r.seconds for r in soak.runs):.1f} s / {soak.percentile(0.95):.1f} s"
    )
    result.row(
        "fastest / slowest", f"{min(r.seconds for r in soak.runs):.1f} s / {max(r.seconds for r in soak.runs):.1f} s"
    )
    result.figures = {
        "runs": total,
        "passed": soak.passes,
        "p50_seconds": round(statistics.median(r.seconds for r in soak.runs), 1),
        "p95_seconds": round(soak.percentile(0.95), 1),
        "seconds": [round(r.seconds, 1) for r in soak.runs],
        "failures": [
            {"run": i + 1, "checks": list(r.failed_checks), "leftover_processes": r.leftovers}
            for i, r in enumerate(soak.runs)
            if not r.passed
        ],
    }
    result.notes.append(
        "Each run is `python -m lab.demo` from start to exit (interpreter start-up included), one after another on "
        "this machine while it does whatever else it does; the load average at the start is recorded beside it."
    )
    result.seconds = time.perf_counter() - started
    return result


def first_run(say: Any = print) -> dict[str, Any]:
    """A fresh clone's `make demo`: the virtualenv built from the lock, then the rehearsal, each timed."""
    with tempfile.TemporaryDirectory(prefix="keyrot-first-run-") as scratch:
        clone = Path(scratch) / "keyrot"
        subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)  # noqa: S603, S607
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYROT_", "OPENAI_", "MOTO_"))}
        env.pop("VIRTUAL_ENV", None)  # the clone builds its own, from the python3.11 on PATH (not ours)
        ours = str(REPO_ROOT / ".venv")
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(ours))
        timings = {}
        for label, target in (("install", ".venv/.installed"), ("rehearsal", "demo")):
            say(f"first run: make {target} in a fresh clone…")
            started = time.perf_counter()
            done = subprocess.run(  # noqa: S603 - make from PATH, in our own clone
                ["make", "--no-print-directory", target],  # noqa: S607
                cwd=clone,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            timings[label] = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"make {target} failed in the fresh clone:\n{(done.stdout + done.stderr)[-2000:]}")
    pip_cache = Path.home() / ".cache" / "pip"
    pip_config = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _head(),
        "install_seconds": round(timings["install"], 1),
        "rehearsal_seconds": round(timings["rehearsal"], 1),
        "total_seconds": round(timings["install"] + timings["rehearsal"], 1),
        "pip_cache_present": pip_cache.exists() and any(pip_cache.iterdir()),
        # Packages from local wheels or a file:// index (as on a CI image with a mirror): no download time counted.
        "pip_local_sources": bool(os.environ.get("PIP_FIND_LINKS"))
        or "find-links" in pip_config
        or "file://" in pip_config,
    }


def merge_into(output: Path, entry: dict[str, Any], *, first_run_only: bool = False) -> None:
    """Put `entry` under results.json's "demo_soak" key, keeping everything else the file holds: a soak replaces
    the soak's figures (and keeps the last first-run figures unless it measured new ones); a first-run measurement
    alone (`first_run_only`) replaces only those."""
    document = json.loads(output.read_text()) if output.exists() else {}
    previous = document.get(RESULTS_KEY) or {}
    if first_run_only:
        entry = {**previous, **entry}
    elif "first_run" in previous and "first_run" not in entry:
        entry = {**entry, "first_run": previous["first_run"]}
    document[RESULTS_KEY] = entry
    temporary = output.with_name(output.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2, default=str) + "\n")
    os.replace(temporary, output)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.demo_soak", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"rehearsals in a row (default {RUNS}; 0: none)")
    parser.add_argument("--first-run", action="store_true", help="also time a fresh clone's make demo")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results file to add the figures to")
    args = parser.parse_args(argv)
    if args.runs < 0 or (args.runs == 0 and not args.first_run):
        parser.error("--runs must be at least 1 (or 0 with --first-run)")
    if args.runs == 0:
        fresh = first_run()
        merge_into(args.output, {"first_run": fresh}, first_run_only=True)
        print(f"first run: install {fresh['install_seconds']} s + rehearsal {fresh['rehearsal_seconds']} s")
        return 0
    from bench.__main__ import machine_info, render_table

    started, machine = datetime.now(UTC), machine_info()
    result = run(args.runs)
    entry: dict[str, Any] = {
        "generated_at": started.isoformat(timespec="seconds"),
        "machine": machine,
        **result.to_json(),
    }
    if args.first_run:
        entry["first_run"] = first_run()
    merge_into(args.output, entry)
    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 200).print(render_table([result], result.seconds, False))
    figures = result.figures
    p50, p95 = figures["p50_seconds"], figures["p95_seconds"]
    print(f"{figures['passed']} of {figures['runs']} passed; p50 {p50} s, p95 {p95} s")
    if "first_run" in entry:
        fresh = entry["first_run"]
        print(f"first run: install {fresh['install_seconds']} s + rehearsal {fresh['rehearsal_seconds']} s")
    print(f"figures in {args.output} under {RESULTS_KEY!r}")
    return 0 if figures["passed"] == figures["runs"] else 1


def _session_processes(session_id: int) -> list[int]:
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session_id and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _head() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, read-only
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
