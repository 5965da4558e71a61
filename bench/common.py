"""Shared helpers: interleaved repeated timing, medians and ratios, secrets, Redis servers.

Every comparison is timed side by side in one process: each round runs one sample of every
variant (in a rotated order), samples are many iterations long, and results are medians over
rounds. Ratios are computed from the medians, and also per round (paired, since the variants
of one round ran within milliseconds of each other) to show how much the noise moves them.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"

# Fixed, benchmark-only secrets (never used outside these throwaway stores).
MFA_SECRET = "bench-mfa-secret-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF"  # noqa: S105 (benchmark-only)
SESSION_SECRET = "bench-session-secret-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105


def quick() -> bool:
    """BENCH_QUICK=1: a few rounds of small samples, to check the suite runs (not to measure)."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def scaled(full: int, quick_value: int) -> int:
    return quick_value if quick() else full


@dataclass
class Summary:
    """Per-operation times of one variant over the rounds, in microseconds."""

    samples: list[float] = field(default_factory=list)
    ops_per_sample: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def quartiles(self) -> tuple[float, float]:
        if len(self.samples) < 2:
            return self.samples[0], self.samples[0]
        q = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q[0], q[2]

    def to_json(self) -> dict[str, Any]:
        low, high = self.quartiles()
        return {
            "median_us": round(self.median, 3),
            "p25_us": round(low, 3),
            "p75_us": round(high, 3),
            "min_us": round(min(self.samples), 3),
            "rounds": len(self.samples),
            "ops_per_sample": self.ops_per_sample,
            "samples_us": [round(s, 3) for s in self.samples],
        }


SampleFn = Callable[[int], Awaitable[int]]
"""Runs `n` operations and returns the nanoseconds they took (perf_counter_ns)."""


async def calibrate(run: SampleFn, target_ns: int, floor: int = 50, cap: int = 50_000) -> int:
    """How many operations make one sample of about `target_ns`."""
    await run(max(floor // 5, 10))  # warm up caches, lazy imports, the middleware stack
    probe = max(floor, 20)
    elapsed = max(await run(probe), 1)
    return max(floor, min(cap, int(probe * target_ns / elapsed)))


async def interleaved(
    variants: dict[str, SampleFn],
    rounds: int,
    target_ns: int,
    ops: dict[str, int] | None = None,
) -> dict[str, Summary]:
    """Time every variant once per round, rotating the order, for `rounds` rounds."""
    sizes = dict(ops or {})
    for name, run in variants.items():
        if name not in sizes:
            sizes[name] = await calibrate(run, target_ns)
    results = {name: Summary(ops_per_sample=sizes[name]) for name in variants}
    for name in schedule(list(variants), rounds):
        gc.collect()
        n = sizes[name]
        results[name].samples.append(await variants[name](n) / n / 1000)
    return results


SyncSampleFn = Callable[[int], int]


def interleaved_sync(
    variants: dict[str, SyncSampleFn], rounds: int, target_ns: int
) -> dict[str, Summary]:
    """`interleaved` for code that must not run inside an event loop (Django's ORM)."""
    sizes: dict[str, int] = {}
    for name, run in variants.items():
        run(10)
        elapsed = max(run(50), 1)
        sizes[name] = max(50, min(50_000, int(50 * target_ns / elapsed)))
    results = {name: Summary(ops_per_sample=sizes[name]) for name in variants}
    for name in schedule(list(variants), rounds):
        gc.collect()
        n = sizes[name]
        results[name].samples.append(variants[name](n) / n / 1000)
    return results


def schedule(names: list[str], rounds: int) -> list[str]:
    """Every name once per round, the order rotated by one each round."""
    order: list[str] = []
    for r in range(rounds):
        shift = r % len(names)
        order += names[shift:] + names[:shift]
    return order


def paired_ratio(
    num_hi: Summary, num_lo: Summary, den_hi: Summary, den_lo: Summary
) -> dict[str, float | None]:
    """(num_hi - num_lo) / (den_hi - den_lo), per round, then the median of those."""
    den = den_hi.median - den_lo.median
    of_medians = (num_hi.median - num_lo.median) / den if den > 0 else None
    per_round = [
        (a - b) / (c - d)
        for a, b, c, d in zip(
            num_hi.samples, num_lo.samples, den_hi.samples, den_lo.samples, strict=True
        )
        if c - d > 0
    ]
    return _ratio(per_round, of_medians)


def simple_ratio(num: Summary, den: Summary) -> dict[str, float | None]:
    """num / den, per round, then the median of those."""
    of_medians = num.median / den.median if den.median > 0 else None
    per_round = [a / b for a, b in zip(num.samples, den.samples, strict=True) if b > 0]
    return _ratio(per_round, of_medians)


def _ratio(per_round: list[float], of_medians: float | None) -> dict[str, float | None]:
    """The headline is the median of the per-round ratios: the variants of one round ran within
    a second of each other, so a ratio per round cancels the machine's slow and fast phases
    (seen here: every variant 1.5x slower for a few seconds), which the ratio of each variant's
    own median does not. The ratio of the medians is kept for comparison."""
    result: dict[str, float | None] = {
        "ratio": _round(statistics.median(per_round) if len(per_round) >= 3 else of_medians),
        "ratio_of_medians": _round(of_medians),
    }
    if len(per_round) >= 2:
        q = statistics.quantiles(per_round, n=4, method="inclusive")
        result.update(per_round_p25=_round(q[0]), per_round_p75=_round(q[2]))
    return result


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def target(
    ident: str,
    description: str,
    goal: str,
    measured: float | None,
    met: bool | None,
    note: str = "",
) -> dict[str, Any]:
    """One line of the targets table; `met` None means "not measurable yet"."""
    return {
        "id": ident,
        "description": description,
        "target": goal,
        "measured": measured,
        "met": met,
        "note": note,
    }


@contextmanager
def timer() -> Iterator[Callable[[], float]]:
    """`with timer() as elapsed: ...; elapsed()` in seconds."""
    start = time.perf_counter()
    end: list[float] = []
    try:
        yield lambda: (end[0] if end else time.perf_counter()) - start
    finally:
        end.append(time.perf_counter())


# -- Redis ----------------------------------------------------------------------------------


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


@contextmanager
def redis_server(directory: Path) -> Iterator[Any]:
    """A throwaway redis-server on a free loopback port (the test suite's helper), with
    Redis's default persistence (no AOF fsync per write), so writes cost what they usually do."""
    from tests.support.redis_servers import RedisServer

    server = RedisServer(directory, extra=("--appendonly", "no"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


def command_calls(client: Any, ignore: Sequence[str] = ()) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT (INFO commandstats), leaving out
    the INFO/CONFIG calls the benchmark makes itself."""
    skip = {"info", "config", "config|resetstat", "config|get", *ignore}
    stats: dict[str, Any] = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name.removeprefix("cmdstat_") not in skip
    }
