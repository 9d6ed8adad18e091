"""How many threads each step of a compiled plan runs on (the cpu backend, issue 16).

A kernel called alone runs on one thread below a size bound (``CpuBackend.threads_for``).
A plan knows its steps' order too. Where libgomp's threads spin, a short stretch of
small steps between two multi-threaded ones (a squeeze-and-excitation block's pool and
two tiny 1×1 convs) runs on every thread as well: the second core is awake for the
steps on either side anyway, and the stretch's inputs were written by both cores. No
per-step bound told these steps apart from LeNet's (per node their 1- and 2-thread
times swapped order between runs), but whole runs did: EfficientNet-B0 at batch 1 (2
spinning threads, in-process A/Bs on the busy 2-core VM) took 0.95–0.96× the time so,
as with no bound at all, while LeNet, whose steps are all small, keeps its single
thread (no bound: 1.20× slower). Sleeping threads (``OMP_WAIT_POLICY=PASSIVE``) would
pay a wake-up per step: there the size bound alone decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# The longest stretch of small steps that runs on every thread between two
# multi-threaded steps (EfficientNet's SE blocks: 3; MobileNet v3's and DenseNet-121's
# stretches: up to 4); a longer one stays on one thread, where a run of tiny steps pays
# a parallel region per step for one switch saved.
MAX_BRIDGED_STEPS = 6


def bridged(counts: Sequence[int | None], threads: int,
            longest: int = MAX_BRIDGED_STEPS) -> list[int | None]:
    """``counts`` (each step's thread count by the size bound; None for a step that
    sets none, which neither breaks nor counts in a stretch) with every stretch of at
    most ``longest`` one-thread steps that has a ``threads`` step on both sides raised to
    ``threads``."""
    out = list(counts)
    stretch: list[int] = []  # positions of the one-thread steps since the last multi
    seen_multi = False
    for i, n in enumerate(counts):
        if n is None:
            continue
        if n == 1:
            stretch.append(i)
            continue
        if seen_multi and stretch and len(stretch) <= longest and n == threads:
            for j in stretch:
                out[j] = threads
        stretch, seen_multi = [], n == threads
    return out


def small(problem: Any, flops: float, nbytes: float) -> bool:
    """Whether ``problem`` is below both bounds: FLOPs of one parallel region (an RNN's
    ``region_flops``, else ``flops``) and bytes of output."""
    return getattr(problem, "region_flops", getattr(problem, "flops", 0)) < flops \
        and problem.output_bytes < nbytes


def describe(flops: float, nbytes: float, spinning: bool) -> str:
    """``info()["small_problems"]``: the bound in words."""
    return (f"1 thread below {flops:.0e} FLOPs and {int(nbytes) >> 10} KiB of output"
            + (" (spinning threads)" if spinning else ""))


def plan_threads(backend: Any, problems: Sequence[Any]) -> list[int | None]:
    """Each plan step's count (None where a step begins no kernel: ``problems[i]`` is
    None): ``backend.threads_for``'s, short stretches bridged where threads spin."""
    counts = [None if p is None else backend.threads_for(p) for p in problems]
    if backend.dnnl.spinning and backend.threads > 1:
        return bridged(counts, backend.threads)
    return counts
