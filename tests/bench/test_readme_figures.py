"""Every figure the README, docs/performance.md and docs/costs.md quote is the one bench/results.json last recorded.

Re-running `make bench` or `make demo-soak` changes the figures; these tests then name each figure to update, so
no page quotes a number no run produced (or "14 of 22 targets met" above a table that shows 14 rows).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return dict(json.loads((REPO_ROOT / "bench" / "results.json").read_text()))


@pytest.fixture(scope="module")
def readme() -> str:
    return (REPO_ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def performance() -> str:
    return (REPO_ROOT / "docs" / "performance.md").read_text()


@pytest.fixture(scope="module")
def costs() -> str:
    return (REPO_ROOT / "docs" / "costs.md").read_text()


def _section(text: str, heading: str) -> str:
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _table_rows(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("| ") and not line.startswith("|--")]


def _missing(figures: dict[str, str], text: str) -> dict[str, str]:
    return {name: figure for name, figure in figures.items() if figure not in text}


def _cost_rows(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The cost benchmark's per-environment breakdowns ("8.52 = secrets 0.84, kms 1.03, …, rest 0.004")."""
    rows = {}
    for row in results["benchmarks"]["cost"]["rows"]:
        if row["measure"].endswith(": USD/month"):
            total, _, parts = row["value"].partition(" = ")
            values = {name: float(value) for name, value in (part.split() for part in parts.split(", "))}
            rows[row["measure"].removesuffix(": USD/month")] = {"total": float(total), **values}
    return rows


def _summary_figures(results: dict[str, Any]) -> dict[str, str]:
    """What the README's summary quotes, formatted as it quotes it."""
    bench = results["benchmarks"]
    hot, rotation = bench["hot_path"]["figures"], bench["rotation_path"]["figures"]
    cold, zero = bench["cold_start"]["figures"], bench["zero_downtime"]["figures"]
    cost = bench["cost"]["figures"]["estimates"]
    contain, detect = bench["containment"]["figures"], bench["detection"]["figures"]
    rotation_calls = next(t["value"] for t in bench["rotation_path"]["targets"] if "later rotation" in t["measure"])
    monitor_cold = next(t["value"] for t in bench["monitor_scale"]["targets"] if "cold run" in t["measure"])
    return {
        "date of the run": datetime.fromisoformat(results["generated_at"]).date().isoformat(),
        "targets met": f"{results['targets_met']} of {results['targets_total']} targets met",
        "cached read speed-up": f"{hot['speedup_vs_uncached']:,.0f}×",
        "calls per rotation": rotation_calls.split(" (")[0],
        "rotation over injected latency": f"{rotation['median_wall_over_injected']:.2f}×",
        "monitor at 1,000 keys": monitor_cold.split(" (")[0],
        "rotate import ratio": f"{cold['ratio_to_boto3']['rotate: repo']:.2f}×",
        "rotate archive import ratio": f"{cold['ratio_to_boto3']['rotate: archive']:.2f}×",
        "requests during rotations": f"{zero['requests_failed']} failed of {zero['requests_sent']:,} requests",
        "default cost": f"{cost['defaults, 2 keys']['total_usd']:.2f} USD/month",
        "dashboard-on cost": f"{cost['dashboard on (dashboard: true)']['total_usd']:.2f}",
        "one band per key": f"{_option(bench, 'anomalyAlarms: requests')['per_key_usd']:.2f} with `anomalyAlarms",
        "cost per extra key": f"{sum(bench['cost']['figures']['per_key_usd'].values()):.2f} USD",
        "slowest containment": _seconds(max(c["median_seconds_to_contain"] for c in contain["cases"].values())),
        "requests failed during containment": f"{contain['application_requests_failed']} failed",
        **{f"time to detect: {case}": _minutes(c["worst_seconds"]) for case, c in detect["cases"].items()},
    }


def _option(bench: dict[str, Any], setting: str) -> dict[str, float]:
    """The cost model's figures with one setting changed, found by the setting it names."""
    (found,) = [o for label, o in bench["cost"]["figures"]["options"].items() if f"({setting})" in label]
    return dict(found)


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def _minutes(value: float | None) -> str:
    return "never" if value is None else f"{value / 60:.1f} min"


def test_the_readme_summary_quotes_the_last_bench_run(results: dict[str, Any], readme: str) -> None:
    summary = _section(readme, "Cost and performance")
    stale = _missing(_summary_figures(results), summary)
    assert not stale, f"README figures differ from bench/results.json; update the README with: {stale}"
    assert "make bench" in summary and "docs/performance.md" in summary and "docs/costs.md" in summary


def test_the_readme_summary_has_one_row_per_benchmark_counting_its_targets(
    results: dict[str, Any], readme: str
) -> None:
    # GIVEN the summary table: one row per benchmark, with how many of its targets were met
    rows = _table_rows(_section(readme, "Cost and performance"))
    expected = {
        b["title"]: f"{sum(t['met'] for t in b['targets'])} of {len(b['targets'])}"
        for b in results["benchmarks"].values()
    }
    # THEN every benchmark has its row with its own count, and the counts add up to the total quoted above them
    for title, count in expected.items():
        row = f"| {title} | {count} |"
        assert any(line.startswith(row) for line in rows), f"the README summary needs the row {row} …"
    assert len([row for row in rows if re.match(r"\| \d\. ", row)]) == len(expected)


def test_docs_performance_lists_every_target_as_recorded(results: dict[str, Any], performance: str) -> None:
    # GIVEN every target of the last run
    targets = [(b["title"], t) for b in results["benchmarks"].values() for t in b["targets"]]
    rows = [row for row in _table_rows(performance) if re.match(r"\| \d\. ", row)]
    # THEN the page's table has exactly one row per target, with its value, goal and verdict, under the right count
    for title, target in targets:
        verdict = "yes" if target["met"] else "**no**"
        row = f"| {title} | {target['measure']} | {target['value']} | {target['goal']} | {verdict} |"
        assert row in rows, f"docs/performance.md is missing or misquotes: {row}"
    assert len(rows) == len(targets) == results["targets_total"]
    assert f"**{results['targets_met']} of {results['targets_total']} targets met.**" in performance
    assert datetime.fromisoformat(results["generated_at"]).date().isoformat() in performance


def test_every_missed_target_is_marked_as_missed(results: dict[str, Any], readme: str, performance: str) -> None:
    missed = sum(1 for b in results["benchmarks"].values() for t in b["targets"] if not t["met"])
    assert missed == results["targets_total"] - results["targets_met"]
    assert sum(1 for row in _table_rows(performance) if row.endswith("| **no** |")) == missed


def test_docs_costs_quotes_the_cost_model(results: dict[str, Any], costs: str) -> None:
    # GIVEN the cost benchmark's breakdown per environment
    rows = _table_rows(costs)
    for label, usd in _cost_rows(results).items():
        # The breakdown names only the groups of half a cent or more: the others are 0 (or in "rest").
        main = ("secrets", "kms", "metrics", "alarms", "dashboard")
        rest = sum(value for group, value in usd.items() if group not in ("total", *main))
        cells = [usd["total"], *(usd.get(group, 0.0) for group in main), rest]
        figures = " | ".join(f"{value:.2f}" for value in cells)
        # THEN the page shows each one, cell for cell (the default's total in bold)
        expected = f"| {label} | {figures} |"
        assert expected in rows or expected.replace(f"| {cells[0]:.2f} |", f"| **{cells[0]:.2f}** |", 1) in rows, (
            f"docs/costs.md is missing or misquotes: {expected}"
        )
    # AND the fixed part and the part per extra key, group by group, as the cost model split them
    figures = results["benchmarks"]["cost"]["figures"]
    for part in ("fixed_usd", "per_key_usd"):
        split = figures[part]
        cells = [sum(split.values()), split["secrets"], split["kms"], split["metrics"], split["alarms"]]
        cells += [
            split["dashboard"],
            sum(v for g, v in split.items() if g not in ("secrets", "kms", "metrics", "alarms", "dashboard")),
        ]
        shown = " | ".join(f"{value:.2f}" for value in cells)
        assert any(row.endswith(f"| {shown} |") for row in rows), f"docs/costs.md is missing the {part} row: {shown}"
    # AND what the dashboard adds, and the setting that cuts the bill most, as the model priced them
    what_if = {row["measure"]: row["value"] for row in results["benchmarks"]["cost"]["rows"]}
    dashboard_on = what_if["what if: dashboard on (dashboard: true)"].split()[0]
    slower = what_if["what if: monitor every 120 min (monitorIntervalMinutes: 120)"].split()[0]
    best = what_if["setting that cuts the default bill most"]
    setting = best[best.index("(") + 1 : best.index(")")]  # "monitor every 120 min (monitorIntervalMinutes: 120): …"
    assert f"to {dashboard_on}" in costs and f"to {slower}" in costs
    one_band = _option(results["benchmarks"], "anomalyAlarms: requests")
    assert f"| `anomalyAlarms: [requests]` | {one_band['total_usd']:.2f} | {one_band['per_key_usd']:.2f} |" in costs
    assert f"The setting that cuts the bill most is a monitor interval above an hour (`{setting}`" in costs


def _rehearsal_figures(results: dict[str, Any]) -> dict[str, str]:
    soak = results["demo_soak"]["figures"]
    first = results["demo_soak"]["first_run"]
    return {
        "first run": f"{first['total_seconds'] / 60:.1f} minutes",
        "first run installing": f"{first['install_seconds'] / 60:.1f} of them building",
        "later runs, median": f"{soak['p50_seconds']:.0f} s",
        "later runs, 95th percentile": f"{soak['p95_seconds']:.0f} s",
        "soak passes": f"{soak['passed']} of {soak['runs']} back-to-back runs passed",
    }


def test_the_readme_says_how_long_the_first_and_later_rehearsals_take(results: dict[str, Any], readme: str) -> None:
    stale = _missing(_rehearsal_figures(results), _section(readme, "Two commands"))
    assert not stale, f"README rehearsal times differ from bench/results.json (make demo-soak); update: {stale}"
    assert "under a minute" not in readme


def test_docs_performance_reports_the_rehearsal_soak(results: dict[str, Any], performance: str) -> None:
    stale = _missing(_rehearsal_figures(results), _section(performance, "The rehearsal"))
    assert not stale, f"docs/performance.md rehearsal figures differ from bench/results.json; update: {stale}"


def _setting_row(readme: str, key: str) -> str:
    return next(line for line in readme.splitlines() if line.startswith(f"| `{key}` |"))


def test_the_readme_states_the_detection_bounds_next_to_the_settings_that_set_them(
    results: dict[str, Any], readme: str
) -> None:
    # GIVEN the bounds benchmark 8 computed from the deployed defaults
    bounds = {
        case: _minutes(c["bound_seconds"]) for case, c in results["benchmarks"]["detection"]["figures"]["cases"].items()
    }
    # THEN the monitor interval's row gives the bounds it sets alone, and the settle delay's row those it adds to
    interval, settle = _setting_row(readme, "monitorIntervalMinutes"), _setting_row(readme, "settleDelayMinutes")
    for case in ("unmanaged key", "daily spend"):
        assert bounds[case] in interval, (case, bounds[case])
    for case in ("retired key", "usage spike"):
        assert bounds[case] in settle, (case, bounds[case])
