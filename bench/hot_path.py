"""Benchmark 1, the key read hot path: KeyProvider's cached read against the two caching libraries and plain boto3.

All four read one secret from moto's server on 127.0.0.1 over real HTTP. Each subject is timed in batches of reads
(one batch = one sample); the batches of all subjects are interleaved in shuffled order, and medians compared.
Calls reaching Secrets Manager are counted on the server side, so every library is seen the same way.

The speed-up over an uncached read is reported, not targeted (it has been thousands of times the old 1,000× goal);
what is targeted is a regression guard: the cached read must never be slower than the fastest caching library's, or
`python -m bench` fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.common import (
    REGION,
    BenchResult,
    counted_backend_calls,
    fmt_ratio,
    fmt_seconds,
    interleaved,
    median,
    moto_server,
    sandbox_env,
    spread,
    stopwatch,
)

SECRET_NAME = "keyrot/bench/hot-path"  # noqa: S105 - a secret's name
TTL_SECONDS = 300  # KeyProvider's default; the same refresh interval for every library
READS_COUNTED = 10_000
PACED_TTL_SECONDS = 1
PACED_SECONDS = 3.0


def run(smoke: bool = False) -> BenchResult:
    result = BenchResult("hot_path", "1. Key read hot path", smoke=smoke)
    elapsed = stopwatch()
    rounds = 5 if smoke else 41
    cached_batch = 200 if smoke else 5000
    uncached_batch = 3 if smoke else 15
    paced_seconds = 0.3 if smoke else PACED_SECONDS
    with sandbox_env(), moto_server() as endpoint, sandbox_env(AWS_ENDPOINT_URL=endpoint):
        import boto3

        client = boto3.session.Session(region_name=REGION).client("secretsmanager", endpoint_url=endpoint)
        client.create_secret(Name=SECRET_NAME, SecretString=_managed_key_json())
        with counted_backend_calls("get_secret_value", "describe_secret") as served:
            readers = _readers(client, TTL_SECONDS)
            for read in readers.values():
                read()  # the first (filling) read is not part of the hot path
            samples = interleaved(
                {name: _batch_timer(read, cached_batch) for name, read in readers.items()}
                | {"boto3 GetSecretValue (uncached)": _batch_timer(_uncached(client), uncached_batch)},
                rounds,
            )
            served.clear()
            counts = _calls_per_reads(client, READS_COUNTED, served)
            paced = _paced_calls(client, paced_seconds, served)
        _drop_powertools_provider()  # its client points at the server about to stop
    _report(result, samples, counts, paced, rounds, cached_batch, uncached_batch)
    result.seconds = elapsed()
    return result


# --- the subjects --------------------------------------------------------------------------------------------------


def _readers(client: Any, ttl: float) -> dict[str, Callable[[], str]]:
    """A fresh instance of each caching reader, all with the same refresh interval."""
    from aws_lambda_powertools.utilities import parameters
    from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

    from keyrot.client import KeyProvider

    provider = KeyProvider(SECRET_NAME, client=client, ttl_seconds=ttl)
    cache = SecretCache(SecretCacheConfig(secret_refresh_interval=int(ttl)), client=client)
    _drop_powertools_provider()  # so each reader set starts cold
    max_age = int(ttl)
    return {
        "KeyProvider (keyrot)": provider,
        "SecretCache (aws-secretsmanager-caching)": lambda: cache.get_secret_string(SECRET_NAME),
        "get_secret (Powertools parameters)": lambda: parameters.get_secret(
            SECRET_NAME, max_age=max_age, VersionStage="AWSCURRENT"
        ),
    }


def _drop_powertools_provider() -> None:
    """Powertools' module-level get_secret builds its provider (and boto3 client, here through AWS_ENDPOINT_URL) on
    first use and keeps it in DEFAULT_PROVIDERS."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    DEFAULT_PROVIDERS.pop("secrets", None)


def _uncached(client: Any) -> Callable[[], str]:
    def read() -> str:
        return str(client.get_secret_value(SecretId=SECRET_NAME, VersionStage="AWSCURRENT")["SecretString"])

    return read


def _batch_timer(read: Callable[[], Any], size: int) -> Callable[[], float]:
    """One sample: the mean seconds per read over a batch of `size` back-to-back reads."""

    def sample() -> float:
        started = time.perf_counter_ns()
        for _ in range(size):
            read()
        return (time.perf_counter_ns() - started) / size / 1e9

    return sample


def _managed_key_json() -> str:
    from keyrot.secret_model import ManagedKey

    return ManagedKey(
        api_key="sk-bench-placeholder-not-a-key",
        key_id="key_benchHotPath",
        service_account_id="svc_acct_benchHotPath",
        project_id="proj_benchHotPath",
        environment="bench",
        key_name="hot-path",
        created_at=datetime.now(UTC),
    ).to_json()


# --- call counts ---------------------------------------------------------------------------------------------------


def _calls_per_reads(client: Any, reads: int, served: Any) -> dict[str, dict[str, int]]:
    """Secrets Manager calls made by `reads` reads through a fresh instance of each reader (TTL 300 s)."""
    counts: dict[str, dict[str, int]] = {}
    for name, read in _readers(client, TTL_SECONDS).items():
        served.clear()
        for _ in range(reads):
            read()
        counts[name] = dict(served)
    return counts


def _paced_calls(client: Any, seconds: float, served: Any) -> dict[str, dict[str, Any]]:
    """10,000 reads spread over `seconds` with a 1 s refresh interval: how many calls reach Secrets Manager."""
    paced: dict[str, dict[str, Any]] = {}
    chunks = 100
    for name, read in _readers(client, PACED_TTL_SECONDS).items():
        served.clear()
        started = time.monotonic()
        for chunk in range(chunks):
            for _ in range(READS_COUNTED // chunks):
                read()
            pause = started + seconds * (chunk + 1) / chunks - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        elapsed = time.monotonic() - started
        paced[name] = {"seconds": round(elapsed, 3), **dict(served)}
    return paced


# --- report --------------------------------------------------------------------------------------------------------


def _report(
    result: BenchResult,
    samples: dict[str, list[float]],
    counts: dict[str, dict[str, int]],
    paced: dict[str, dict[str, Any]],
    rounds: int,
    cached_batch: int,
    uncached_batch: int,
) -> None:
    medians = {name: median(values) for name, values in samples.items()}
    keyrot = medians["KeyProvider (keyrot)"]
    uncached = medians["boto3 GetSecretValue (uncached)"]
    libraries = {name: value for name, value in medians.items() if name.startswith(("SecretCache", "get_secret"))}
    fastest_name = min(libraries, key=lambda name: libraries[name])
    for name, value in medians.items():
        low, high = spread(samples[name])
        result.row(f"median per read: {name}", f"{fmt_seconds(value)} (IQR {fmt_seconds(low)}–{fmt_seconds(high)})")
    speedup = uncached / keyrot
    result.row("cached KeyProvider read vs uncached GetSecretValue", fmt_ratio(speedup))
    versus = libraries[fastest_name] / keyrot
    # A regression guard, not a headline: the cached read must never become slower than a caching library's.
    result.guard(
        f"KeyProvider vs fastest caching library ({fastest_name.split(' ')[0]})",
        f"{fmt_ratio(versus)} faster" if versus >= 1 else f"{1 / versus:.2f}× slower",
        "no slower (≥ 1.00×)",
        keyrot <= libraries[fastest_name],
    )
    provider_calls = counts["KeyProvider (keyrot)"].get("get_secret_value", 0)
    result.target(
        f"GetSecretValue per {READS_COUNTED:,} KeyProvider reads (TTL {TTL_SECONDS} s)",
        str(provider_calls),
        "≤ 1 per TTL (1)",
        provider_calls <= 1,
    )
    keyrot_paced = paced["KeyProvider (keyrot)"]
    allowed = 1 + int(keyrot_paced["seconds"] // PACED_TTL_SECONDS)
    paced_calls = keyrot_paced.get("get_secret_value", 0)
    result.target(
        f"GetSecretValue per {READS_COUNTED:,} KeyProvider reads over {keyrot_paced['seconds']:.1f} s "
        f"(TTL {PACED_TTL_SECONDS} s)",
        str(paced_calls),
        f"≤ 1 per TTL ({allowed})",
        paced_calls <= allowed,
    )
    for name in libraries:
        per = counts[name]
        per_paced = paced[name]
        result.row(
            f"calls per {READS_COUNTED:,} reads: {name}",
            f"TTL {TTL_SECONDS} s: {per.get('get_secret_value', 0)} Get + {per.get('describe_secret', 0)} Describe; "
            f"TTL {PACED_TTL_SECONDS} s over {per_paced['seconds']:.1f} s: {per_paced.get('get_secret_value', 0)} Get "
            f"+ {per_paced.get('describe_secret', 0)} Describe",
        )
    result.figures = {
        "rounds": rounds,
        "reads_per_cached_batch": cached_batch,
        "reads_per_uncached_batch": uncached_batch,
        "median_seconds_per_read": medians,
        "iqr_seconds_per_read": {name: spread(values) for name, values in samples.items()},
        "speedup_vs_uncached": speedup,
        "speedup_vs_fastest_library": versus,
        "fastest_library": fastest_name,
        "calls_per_10k_reads_ttl_300s": counts,
        "calls_per_10k_reads_paced_ttl_1s": paced,
    }
    result.notes.append(
        "Hot path: each sample is the mean of a batch of back-to-back reads (loop overhead included for every "
        "subject alike); the libraries return the raw SecretString, KeyProvider the parsed api_key, so the "
        "comparison favours the libraries. SecretCache refreshes by DescribeSecret every ttl/2..ttl and reads a "
        "value only when the version changes; KeyProvider refreshes up to 10% early (jitter) by design."
    )
