"""The README's performance and cost figures are the ones `make bench` last wrote to bench/results.json.

Re-running `make bench` changes the figures; this test then names each figure the README must be updated with,
so the README never quotes numbers that no run produced.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return json.loads((REPO_ROOT / "bench" / "results.json").read_text())


@pytest.fixture(scope="module")
def readme() -> str:
    return (REPO_ROOT / "README.md").read_text()


def _section(readme: str, heading: str) -> str:
    start = readme.index(f"## {heading}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def _expected_figures(results: dict[str, Any]) -> dict[str, str]:
    """What the README must quote, formatted as it quotes it."""
    bench = results["benchmarks"]
    hot, rotation = bench["hot_path"]["figures"], bench["rotation_path"]["figures"]
    cold, zero = bench["cold_start"]["figures"], bench["zero_downtime"]["figures"]
    cost = bench["cost"]["figures"]["estimates"]
    ratios = cold["ratio_to_boto3"]
    return {
        "date of the run": datetime.fromisoformat(results["generated_at"]).date().isoformat(),
        "targets met": f"{results['targets_met']} of {results['targets_total']} targets met",
        "cached read speed-up": f"{hot['speedup_vs_uncached']:,.0f}×",
        "speed-up over the fastest library": f"{hot['speedup_vs_fastest_library']:.2f}× faster",
        "rotation wall time": f"{rotation['median_wall_seconds'] * 1000:.1f} ms",
        "rotation over injected latency": f"{rotation['median_wall_over_injected']:.2f}×",
        "rotate import ratio": f"rotate {ratios['rotate: repo']:.2f}×",
        "monitor import ratio": f"monitor {ratios['monitor: repo']:.2f}×",
        "rotate archive import ratio": f"rotate {ratios['rotate: archive']:.2f}×",
        "archive size": f"{cold['archive_bytes'] / 2**20:.2f} MiB",
        "requests during rotations": f"{zero['requests_failed']} failed of {zero['requests_sent']:,} requests",
        "default cost": f"**{cost['defaults, 2 keys']['total_usd']:.2f}**",
        "dashboard-off cost": f"{cost['dashboard off (dashboard: false)']['total_usd']:.2f}",
    }


def test_the_performance_section_quotes_the_last_bench_run(results: dict[str, Any], readme: str) -> None:
    text = _section(readme, "Performance") + _section(readme, "What it costs")
    stale = {name: figure for name, figure in _expected_figures(results).items() if figure not in text}
    assert not stale, f"README figures differ from bench/results.json; update the README with: {stale}"
    assert "make bench" in text


def test_every_missed_target_is_marked_as_missed(results: dict[str, Any], readme: str) -> None:
    missed = sum(1 for b in results["benchmarks"].values() for t in b["targets"] if not t["met"])
    assert missed == results["targets_total"] - results["targets_met"]
    table = [line for line in _section(readme, "Performance").splitlines() if line.startswith("| ")]
    # Rows group several targets (the six cold-start measurements are two rows), so count benchmarks, not rows.
    missed_benchmarks = {name for name, b in results["benchmarks"].items() if any(not t["met"] for t in b["targets"])}
    assert sum(1 for line in table if line.rstrip().endswith("| **no** |")) >= len(missed_benchmarks)
