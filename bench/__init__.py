"""keyrot's benchmarks: `python -m bench` (or `make bench`) runs them all, prints one table, writes results.json.

Each module measures one thing and returns a `BenchResult` from `run(smoke=False)`; `tests/bench` runs each once
at a tiny size. See bench/__main__.py for the table and the results file.
"""

BENCHMARKS = (
    "hot_path",
    "rotation_path",
    "monitor_scale",
    "cold_start",
    "zero_downtime",
    "cost",
    "containment",
    "detection",
    "tripwire",
)

__all__ = ["BENCHMARKS"]
