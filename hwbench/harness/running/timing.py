"""The one timing loop hwbench uses everywhere (CLI, harness, benchmarks).

Warm up, synchronize the device, then time repeated samples; each sample runs the
callable enough times to last well above the clock's resolution (as ``timeit``'s
autorange does), so microsecond kernels are timed as honestly as second-long ones.
Reports the median and the spread, never a single best run.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from hwbench.errors import ArgumentError

MIN_SAMPLE_SECONDS = 1e-3  # a sample shorter than this is dominated by timer noise

# Rules that flag samples too scattered to trust (see ``sample_flags``).
WIDE_SPREAD = 0.25  # IQR / median above this: "wide-spread"
WIDE_TAIL = 10.0  # p99 / median above this (stalls 10x the typical call): "wide-spread"
BIMODAL_GAP = 1.5  # sorted samples jump by this factor between two clusters: "bimodal"
BIMODAL_MIN_SHARE = 0.2  # ... and each cluster holds at least this share of the samples
BIMODAL_MIN_SAMPLES = 6
FLAG_RULES = {"wide_spread_iqr_over_median": WIDE_SPREAD, "wide_spread_p99_over_median":
              WIDE_TAIL, "bimodal_gap_ratio": BIMODAL_GAP,
              "bimodal_min_cluster_share": BIMODAL_MIN_SHARE}


def format_seconds(value: float) -> str:
    """Seconds in the unit that keeps three significant digits readable (``1.23 ms``)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value * 1e9:.3g} ns"


def sample_flags(samples: tuple[float, ...] | list[float]) -> list[str]:
    """``"wide-spread"`` and/or ``"bimodal"`` when the samples cannot be summed up by
    their median.

    - wide-spread: IQR / median > ``WIDE_SPREAD`` (a quarter of the median), or the p99
      (nearest rank, as ``Timing.percentile`` reports it) over ``WIDE_TAIL`` times the
      median: a latency tail of stalls. One stall among thousands of calls (a page fault,
      a collection) moves neither and flags nothing.
    - bimodal: sorted, the samples have a gap where the next is at least ``BIMODAL_GAP``
      times the previous, with at least ``BIMODAL_MIN_SHARE`` of them (and 2) on each
      side; needs ``BIMODAL_MIN_SAMPLES``. Two clusters that far apart mean the figure
      depends on which state a sample happened to catch (a core shared or not, a
      cache warm or not), and the median picks one at random.
    """
    values = sorted(float(v) for v in samples)
    if not values or values[len(values) // 2] <= 0:
        return []
    flags = []
    median = statistics.median(values)
    if len(values) >= 4:
        q = statistics.quantiles(values, n=4)
        iqr = q[2] - q[0]
    else:
        iqr = values[-1] - values[0]
    p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
    if iqr / median > WIDE_SPREAD or p99 / median > WIDE_TAIL:
        flags.append("wide-spread")
    n = len(values)
    least = max(2, math.ceil(n * BIMODAL_MIN_SHARE))
    if n >= BIMODAL_MIN_SAMPLES and values[0] > 0:
        for i in range(least, n - least + 1):
            if values[i] / values[i - 1] >= BIMODAL_GAP:
                flags.append("bimodal")
                break
    return flags


@dataclass(frozen=True)
class Timing:
    """Per-call seconds of each sample, and their summary."""

    samples: tuple[float, ...]
    calls_per_sample: int
    warmup_calls: int

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def iqr(self) -> float:
        """Interquartile range in seconds (0 with fewer than 4 samples' worth of spread)."""
        if len(self.samples) < 4:
            return self.max - self.min
        q = statistics.quantiles(self.samples, n=4)
        return q[2] - q[0]

    @property
    def spread(self) -> float:
        """IQR relative to the median: the noise band a comparison should respect."""
        return self.iqr / self.median if self.median > 0 else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[index]

    @property
    def flags(self) -> list[str]:
        """``sample_flags`` of these samples."""
        return sample_flags(self.samples)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["samples"] = list(self.samples)
        out.update(median=self.median, min=self.min, max=self.max, iqr=self.iqr,
                   spread=self.spread, flags=self.flags)
        return out


def measure(
    fn: Callable[[], object],
    synchronize: Callable[[], None] = lambda: None,
    *,
    warmup: int = 2,
    repeats: int = 10,
    min_time: float = 0.2,
    max_time: float = 5.0,
    batch_calls: bool = True,
) -> Timing:
    """Time ``fn``: ``warmup`` calls, then at least ``repeats`` samples (3 if over budget).

    Seconds are per call. Sampling continues until ``repeats`` samples and ``min_time``
    seconds are both reached, or stops at ``max_time`` once 3 samples exist.
    ``batch_calls=False`` times every call alone (latency percentiles need that).
    """
    if repeats < 1 or warmup < 0 or min_time < 0 or max_time <= 0:
        raise ArgumentError(
            f"measure: need repeats >= 1, warmup >= 0, min_time >= 0, max_time > 0; got "
            f"repeats={repeats}, warmup={warmup}, min_time={min_time}, max_time={max_time}"
        )
    clock = time.perf_counter
    # Batched calls need one call's time to size a sample: at least one warm-up then.
    # Unbatched, ``warmup=0`` means none (the caller has run ``fn`` already).
    warmup = max(warmup, 1) if batch_calls else warmup
    start = clock()
    for _ in range(warmup):
        fn()
    synchronize()
    one_call = (clock() - start) / max(warmup, 1)
    calls = 1
    if batch_calls and one_call < MIN_SAMPLE_SECONDS:
        calls = min(100_000, max(1, int(MIN_SAMPLE_SECONDS / max(one_call, 1e-9)) + 1))
    samples: list[float] = []
    began = clock()
    while True:
        t0 = clock()
        for _ in range(calls):
            fn()
        synchronize()
        samples.append((clock() - t0) / calls)
        elapsed = clock() - began
        enough = len(samples) >= repeats and elapsed >= min_time
        over_budget = elapsed >= max_time and len(samples) >= min(3, repeats)
        if enough or over_budget:
            break
    return Timing(tuple(samples), calls, warmup)
