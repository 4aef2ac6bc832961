"""Prints the fault matrices' totals and the load test's figures at the end of the run, whatever -s says."""

from __future__ import annotations

from typing import Any

from tests.prove.faultkit import FIGURES, TALLIES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    ran = {name: tally for name, tally in TALLIES.items() if tally.total}
    if ran:
        total = sum(tally.total for tally in ran.values())
        violations = sum(len(tally.violations) for tally in ran.values())
        terminalreporter.write_line(f"fault matrix: {total} scenarios, {violations} invariant violations")
        for name, tally in ran.items():
            variants = ", ".join(f"{variant} {count}" for variant, count in tally.scenarios.items())
            terminalreporter.write_line(
                f"  {name}: {tally.total} scenarios ({variants}), {len(tally.violations)} invariant violations"
            )
    for line in FIGURES:
        terminalreporter.write_line(line)
