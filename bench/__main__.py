"""Run every benchmark, print one table, write bench/results.json.

    python -m bench                      # everything, full size (several minutes)
    python -m bench --only hot_path,cost # a subset
    python -m bench --only cost --merge  # re-run one benchmark, keep the others' results
    python -m bench --smoke              # each benchmark once at a tiny size (figures too small to judge by)

Benchmarks run one after another, never in parallel (the machine's noise is bad enough). A benchmark that crashes
is reported as such and the others still run; the exit status is 1 if any crashed or missed a regression guard
(a target kept only to catch a regression, such as the cached key read being slower than a caching library), else 0
(a missed target is a finding, not a failure of the run).

Benchmarks too long for this runner write their own key of results.json, which this runner keeps when it rewrites
the file: `demo_soak` (`make demo-soak`, python -m bench.demo_soak: the rehearsal 20 times in a row).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bench import BENCHMARKS
from bench.common import BenchResult, Row

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"
# Keys of results.json written by benchmarks run on their own (see the docstring): kept across `python -m bench`.
SEPARATE_RESULTS = ("demo_soak",)
REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _importable()
    console = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    started, wall = datetime.now(UTC), time.perf_counter()
    machine = machine_info()
    results: list[BenchResult] = []
    crashed: list[str] = []
    for name in args.only:
        console.print(f"[dim]running {name}{' (smoke)' if args.smoke else ''}…[/dim]")
        try:
            module = importlib.import_module(f"bench.{name}")
            results.append(module.run(smoke=args.smoke))
        except Exception as exc:  # noqa: BLE001 - report the crash, run the rest
            crashed.append(name)
            failure = BenchResult(name, name, smoke=args.smoke)
            failure.rows.append(Row("benchmark crashed", f"{type(exc).__name__}: {exc}"[:300], "runs", False))
            failure.notes.append(f"{name} crashed:\n{traceback.format_exc()}")
            results.append(failure)
    seconds = time.perf_counter() - wall
    console.print(render_table(results, seconds, args.smoke))
    for result in results:
        for note in result.notes:
            console.print(Text(f"• {note}", style="dim"))
    document = results_document(results, started, seconds, machine, argv if argv is not None else sys.argv[1:])
    if args.merge:
        document = merged_document(json.loads(args.output.read_text()), document)
    document.update(kept_results(args.output))
    args.output.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    met, total = document["targets_met"], document["targets_total"]
    console.print(f"{met} of {total} targets met in {seconds:.0f} s; figures in {_shown(args.output)}")
    for guard in missed_guards(results):
        console.print(f"[red]regression guard missed[/red]: {guard}")
    return 1 if crashed or missed_guards(results) else 0


def missed_guards(results: list[BenchResult]) -> list[str]:
    """The regression guards the results missed, as "benchmark: measure" (each fails the run)."""
    return [f"{result.title}: {row.measure}" for result in results for row in result.guards_missed]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run keyrot's benchmarks.")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {BENCHMARKS}")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves each benchmark runs")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the results JSON")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only these benchmarks' results in the existing results JSON (each re-run is dated in 'rerun')",
    )
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    args.only = names
    return args


def _importable() -> None:
    """keyrot (lambdas/) and infra/ importable however the module is started, as pytest's pythonpath does."""
    for path in (REPO_ROOT / "lambdas", REPO_ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def render_table(results: list[BenchResult], seconds: float, smoke: bool) -> Table:
    title = f"keyrot benchmarks ({seconds:.0f} s{', smoke sizes: figures too small to judge by' if smoke else ''})"
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("Benchmark", style="bold", no_wrap=True)
    table.add_column("Measure")
    table.add_column("Value")
    table.add_column("Target")
    table.add_column("Met", justify="center", no_wrap=True)
    for result in results:
        for index, row in enumerate(result.rows):
            met = "" if row.met is None else ("[green]yes[/green]" if row.met else "[red]NO[/red]")
            if row.guard:
                met += " (guard)"
            table.add_row(result.title if index == 0 else "", row.measure, row.value, row.goal, met)
        table.add_section()
    return table


def results_document(
    results: list[BenchResult], started: datetime, seconds: float, machine: dict[str, Any], argv: list[str]
) -> dict[str, Any]:
    targets = [row for result in results for row in result.targets]
    return {
        "generated_at": started.isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *argv]).strip(),
        "seconds": round(seconds, 1),
        "machine": machine,
        "targets_met": sum(1 for row in targets if row.met),
        "targets_total": len(targets),
        "all_targets_met": all(row.met for row in targets),
        "benchmarks": {result.name: result.to_json() for result in results},
    }


def merged_document(previous: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """`previous` with the benchmarks `document` ran replaced, the targets recounted over every benchmark, and each
    re-run benchmark's date and command recorded under `rerun` (the file's own date stays the full run's)."""
    merged = dict(previous)
    merged["benchmarks"] = {**previous.get("benchmarks", {}), **document["benchmarks"]}
    targets = [t for result in merged["benchmarks"].values() for t in result.get("targets", [])]
    merged["targets_met"] = sum(1 for t in targets if t["met"])
    merged["targets_total"] = len(targets)
    merged["all_targets_met"] = all(t["met"] for t in targets)
    merged["rerun"] = {
        **previous.get("rerun", {}),
        **{name: {"at": document["generated_at"], "command": document["command"]} for name in document["benchmarks"]},
    }
    return merged


def kept_results(output: Path) -> dict[str, Any]:
    """What `output` holds under SEPARATE_RESULTS, to carry into the rewritten file."""
    try:
        previous = json.loads(output.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {key: previous[key] for key in SEPARATE_RESULTS if key in previous}


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "cpu_model": _first("/proc/cpuinfo", "model name"),
        "memory_gib": None,
        "load_average_at_start": None,
    }
    total = _first("/proc/meminfo", "MemTotal")
    if total:
        info["memory_gib"] = round(int(total.split()[0]) / 2**20, 1)
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(value, 2) for value in os.getloadavg()]
    return info


def _first(path: str, field: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
