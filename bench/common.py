"""What every benchmark shares: the result shape, a sealed AWS environment, loopback servers and timing helpers.

A benchmark module exposes `run(smoke: bool = False) -> BenchResult`. `smoke=True` runs it once at a tiny size (the
test suite does, to prove it works); the figures are then real but too small to judge a target by.
"""

from __future__ import annotations

import logging
import math
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench"}


@dataclass(frozen=True)
class Row:
    """One line of the table: a measure, its value, and (for a target) the goal and whether it was met. A guard is a
    target kept only to catch a regression: missing it fails `python -m bench` (exit 1)."""

    measure: str
    value: str
    goal: str = ""
    met: bool | None = None
    guard: bool = False


@dataclass
class BenchResult:
    name: str  # module name, the key in results.json
    title: str  # what the table shows as the benchmark
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # every raw number, for results.json
    notes: list[str] = field(default_factory=list)  # justifications and caveats, printed under the table
    seconds: float = 0.0
    smoke: bool = False

    def row(self, measure: str, value: str) -> None:
        self.rows.append(Row(measure, value))

    def target(self, measure: str, value: str, goal: str, met: bool) -> None:
        self.rows.append(Row(measure, value, goal, bool(met)))

    def guard(self, measure: str, value: str, goal: str, met: bool) -> None:
        """A regression guard: a target whose miss fails the run."""
        self.rows.append(Row(measure, value, goal, bool(met), guard=True))

    @property
    def guards_missed(self) -> list[Row]:
        return [row for row in self.rows if row.guard and not row.met]

    @property
    def targets(self) -> list[Row]:
        return [row for row in self.rows if row.met is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "seconds": round(self.seconds, 2),
            "smoke": self.smoke,
            "targets": [
                {"measure": r.measure, "value": r.value, "goal": r.goal, "met": r.met, "guard": r.guard}
                for r in self.targets
            ],
            "rows": [{"measure": r.measure, "value": r.value} for r in self.rows if r.met is None],
            "figures": self.figures,
            "notes": self.notes,
        }


# --- environment ---------------------------------------------------------------------------------------------------


@contextmanager
def sandbox_env(**extra: str) -> Iterator[None]:
    """Fake credentials, one region, loopback never proxied, no endpoint or keyrot overrides; restored afterwards.

    Nothing a benchmark does can reach real AWS: every client talks to moto (in process, or its server on 127.0.0.1).
    """
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("AWS_", "KEYROT_")) or name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
            del os.environ[name]
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update({"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "NO_PROXY": "127.0.0.1,localhost", **extra})
    from keyrot.aws.clients import aws_client

    aws_client.cache_clear()
    try:
        yield
    finally:
        aws_client.cache_clear()
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's ThreadedMotoServer on 127.0.0.1 (a free port), in this process; yields its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    from lab.moto_gaps import patched_moto

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        with patched_moto():
            yield f"http://{host}:{port}"
    finally:
        server.stop()
        _reset_moto()


@contextmanager
def moto_in_process() -> Iterator[None]:
    """moto's in-process mock (no HTTP), with keyrot's Secrets Manager fixes."""
    from moto import mock_aws

    from lab.moto_gaps import patched_moto

    with mock_aws(), patched_moto():
        yield


def _reset_moto() -> None:
    """Drop everything the server held: its backends live in this process and would outlive it."""
    from moto.core.base_backend import BackendDict

    BackendDict.reset()


@contextmanager
def counted_backend_calls(*names: str) -> Iterator[Counter[str]]:
    """Count calls to moto's Secrets Manager backend methods (server side: every client and library is seen)."""
    from moto.secretsmanager import models as sm_models

    counts: Counter[str] = Counter()
    originals = {name: getattr(sm_models.SecretsManagerBackend, name) for name in names}

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(self, *args, **kwargs)

        return counted

    for name, original in originals.items():
        setattr(sm_models.SecretsManagerBackend, name, wrap(name, original))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(sm_models.SecretsManagerBackend, name, original)


class AwsCallCounter:
    """Every AWS call a boto3 client attempts (successful or not), by operation: `attach(client)` to count it."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("after-call.*.*", self._after)
        client.meta.events.register("after-call-error.*.*", self._after_error)
        return client

    def _after(self, model: Any = None, http_response: Any = None, **_: Any) -> None:
        self.calls[model.name] += 1
        if getattr(http_response, "status_code", 200) >= 300:
            self.failed[model.name] += 1

    def _after_error(self, model: Any = None, **_: Any) -> None:
        self.calls[model.name] += 1
        self.failed[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


# --- timing --------------------------------------------------------------------------------------------------------


def interleaved(subjects: dict[str, Callable[[], float]], rounds: int, *, seed: int = 7) -> dict[str, list[float]]:
    """Run each subject once per round, in a shuffled order every round; collect what each returns (a timing).

    Interleaving spreads the machine's noise (other processes, frequency changes) over every subject alike.
    """
    shuffle = random.Random(seed)
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    names = list(subjects)
    for _ in range(rounds):
        shuffle.shuffle(names)
        for name in names:
            samples[name].append(subjects[name]())
    return samples


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> tuple[float, float]:
    """The interquartile range (25th, 75th percentile), a noise indicator printed beside medians."""
    if len(values) < 4:
        return (min(values), max(values))
    quartiles = statistics.quantiles(values, n=4)
    return (quartiles[0], quartiles[2])


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log(y) against log(x): the growth exponent (1.0 = linear)."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(max(y, 1e-12)) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    denominator = sum((x - mx) ** 2 for x in lx)
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / denominator if denominator else 0.0


def stopwatch() -> Callable[[], float]:
    """Start a clock; calling the result returns the seconds since."""
    started = time.perf_counter()
    return lambda: time.perf_counter() - started


def fmt_seconds(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:,.0f}×" if ratio >= 100 else f"{ratio:.2f}×"
