"""Measure this machine's float32 FMA peak, in GFLOP/s (10**9 float32 operations per second).

Why: a "% of peak" figure is only as honest as the peak it divides by. Spec-sheet peaks assume
a clock the chip may not hold and FMA pipes it may not have, so hwbench measures the peak
instead: a loop of independent ``vfmadd231ps`` instructions that nothing else can beat, run on
every core at once. Each FMA counts as two FLOPs (a multiply and an add) per float32 lane.

Why the machine code is embedded: hwbench must run where no compiler is installed. The two loops
below (AVX-512 on zmm registers, AVX2/FMA3 on ymm registers) were assembled once with GNU ``as``
at development time; their bytes sit in this file next to the listing they came from. At run
time they are copied into an anonymous ``mmap``, made executable with ``mprotect`` and called
through ``ctypes.CFUNCTYPE``, which releases the GIL, so N Python threads run N loops on N cores.

Only x86-64 Linux is supported; anywhere else :func:`measure_fma_peak` raises
:class:`hwbench.errors.UnsupportedError` and :func:`available_isas` returns ``[]``.
"""

from __future__ import annotations

import ctypes
import functools
import math
import mmap
import os
import platform
import statistics
import struct
import sys
import threading
import time
from dataclasses import dataclass

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.harness.running.machine_state import Monitor

__all__ = ["FmaPeak", "available_isas", "measure_fma_peak"]

# Both loops are ``uint64_t f(uint64_t iterations)`` under the System V x86-64 ABI: the count
# arrives in rdi and the function returns it in rax. They touch only rax, rdi, flags and
# xmm/ymm/zmm0-13, all caller-saved; ``vzeroupper`` before ``ret`` avoids AVX-SSE transition
# penalties in the caller. A zero count returns at once. Twelve independent accumulators cover
# FMA latency (4-5 cycles) times two FMA pipes; the sources are 1.0f, so the accumulators count
# up through ordinary numbers (no denormals, no infinities) and the data is not all zeros.
#
# Assembled from (GNU as, .intel_syntax noprefix); offsets are from the start of each blob:
#
#   mov eax, 0x3f800000 ; vmovd xmm12, eax         ; eax = bit pattern of 1.0f
#   vbroadcastss zmm12, xmm12 ; vmovaps zmm13, zmm12   ; src1 = src2 = 1.0f in all lanes
#   vxorps xmm0..xmm11 (each with itself)              ; acc0..acc11 = 0 (VEX zeroes the zmm)
#   mov rax, rdi ; test rdi, rdi ; jz done
# loop:
#   vfmadd231ps zmm0..zmm11, zmm12, zmm13              ; acc_i += src1 * src2
#   dec rdi ; jnz loop
# done:
#   vzeroupper ; ret
#
# The AVX2 loop is the same with ymm in place of zmm (VEX instead of EVEX encoding).

# Kept out of the formatter so the bytes stay aligned with their listing.
# fmt: off
_ZMM_LOOP = bytes.fromhex(
    "b8 00 00 80 3f "       # 00: mov eax,0x3f800000
    "c5 79 6e e0 "          # 05: vmovd xmm12,eax
    "62 52 7d 48 18 e4 "    # 09: vbroadcastss zmm12,xmm12
    "62 51 7c 48 28 ec "    # 0f: vmovaps zmm13,zmm12
    "c5 f8 57 c0 "          # 15: vxorps xmm0,xmm0,xmm0
    "c5 f0 57 c9 "          # 19: vxorps xmm1,xmm1,xmm1
    "c5 e8 57 d2 "          # 1d: vxorps xmm2,xmm2,xmm2
    "c5 e0 57 db "          # 21: vxorps xmm3,xmm3,xmm3
    "c5 d8 57 e4 "          # 25: vxorps xmm4,xmm4,xmm4
    "c5 d0 57 ed "          # 29: vxorps xmm5,xmm5,xmm5
    "c5 c8 57 f6 "          # 2d: vxorps xmm6,xmm6,xmm6
    "c5 c0 57 ff "          # 31: vxorps xmm7,xmm7,xmm7
    "c4 41 38 57 c0 "       # 35: vxorps xmm8,xmm8,xmm8
    "c4 41 30 57 c9 "       # 3a: vxorps xmm9,xmm9,xmm9
    "c4 41 28 57 d2 "       # 3f: vxorps xmm10,xmm10,xmm10
    "c4 41 20 57 db "       # 44: vxorps xmm11,xmm11,xmm11
    "48 89 f8 "             # 49: mov rax,rdi
    "48 85 ff "             # 4c: test rdi,rdi
    "74 4d "                # 4f: je 9e (done)
    "62 d2 1d 48 b8 c5 "    # 51: vfmadd231ps zmm0,zmm12,zmm13   (loop)
    "62 d2 1d 48 b8 cd "    # 57: vfmadd231ps zmm1,zmm12,zmm13
    "62 d2 1d 48 b8 d5 "    # 5d: vfmadd231ps zmm2,zmm12,zmm13
    "62 d2 1d 48 b8 dd "    # 63: vfmadd231ps zmm3,zmm12,zmm13
    "62 d2 1d 48 b8 e5 "    # 69: vfmadd231ps zmm4,zmm12,zmm13
    "62 d2 1d 48 b8 ed "    # 6f: vfmadd231ps zmm5,zmm12,zmm13
    "62 d2 1d 48 b8 f5 "    # 75: vfmadd231ps zmm6,zmm12,zmm13
    "62 d2 1d 48 b8 fd "    # 7b: vfmadd231ps zmm7,zmm12,zmm13
    "62 52 1d 48 b8 c5 "    # 81: vfmadd231ps zmm8,zmm12,zmm13
    "62 52 1d 48 b8 cd "    # 87: vfmadd231ps zmm9,zmm12,zmm13
    "62 52 1d 48 b8 d5 "    # 8d: vfmadd231ps zmm10,zmm12,zmm13
    "62 52 1d 48 b8 dd "    # 93: vfmadd231ps zmm11,zmm12,zmm13
    "48 ff cf "             # 99: dec rdi
    "75 b3 "                # 9c: jne 51 (loop)
    "c5 f8 77 "             # 9e: vzeroupper                      (done)
    "c3"                    # a1: ret
)

_YMM_LOOP = bytes.fromhex(
    "b8 00 00 80 3f "       # 00: mov eax,0x3f800000
    "c5 79 6e e0 "          # 05: vmovd xmm12,eax
    "c4 42 7d 18 e4 "       # 09: vbroadcastss ymm12,xmm12
    "c4 41 7c 28 ec "       # 0e: vmovaps ymm13,ymm12
    "c5 f8 57 c0 "          # 13: vxorps xmm0,xmm0,xmm0
    "c5 f0 57 c9 "          # 17: vxorps xmm1,xmm1,xmm1
    "c5 e8 57 d2 "          # 1b: vxorps xmm2,xmm2,xmm2
    "c5 e0 57 db "          # 1f: vxorps xmm3,xmm3,xmm3
    "c5 d8 57 e4 "          # 23: vxorps xmm4,xmm4,xmm4
    "c5 d0 57 ed "          # 27: vxorps xmm5,xmm5,xmm5
    "c5 c8 57 f6 "          # 2b: vxorps xmm6,xmm6,xmm6
    "c5 c0 57 ff "          # 2f: vxorps xmm7,xmm7,xmm7
    "c4 41 38 57 c0 "       # 33: vxorps xmm8,xmm8,xmm8
    "c4 41 30 57 c9 "       # 38: vxorps xmm9,xmm9,xmm9
    "c4 41 28 57 d2 "       # 3d: vxorps xmm10,xmm10,xmm10
    "c4 41 20 57 db "       # 42: vxorps xmm11,xmm11,xmm11
    "48 89 f8 "             # 47: mov rax,rdi
    "48 85 ff "             # 4a: test rdi,rdi
    "74 41 "                # 4d: je 90 (done)
    "c4 c2 1d b8 c5 "       # 4f: vfmadd231ps ymm0,ymm12,ymm13   (loop)
    "c4 c2 1d b8 cd "       # 54: vfmadd231ps ymm1,ymm12,ymm13
    "c4 c2 1d b8 d5 "       # 59: vfmadd231ps ymm2,ymm12,ymm13
    "c4 c2 1d b8 dd "       # 5e: vfmadd231ps ymm3,ymm12,ymm13
    "c4 c2 1d b8 e5 "       # 63: vfmadd231ps ymm4,ymm12,ymm13
    "c4 c2 1d b8 ed "       # 68: vfmadd231ps ymm5,ymm12,ymm13
    "c4 c2 1d b8 f5 "       # 6d: vfmadd231ps ymm6,ymm12,ymm13
    "c4 c2 1d b8 fd "       # 72: vfmadd231ps ymm7,ymm12,ymm13
    "c4 42 1d b8 c5 "       # 77: vfmadd231ps ymm8,ymm12,ymm13
    "c4 42 1d b8 cd "       # 7c: vfmadd231ps ymm9,ymm12,ymm13
    "c4 42 1d b8 d5 "       # 81: vfmadd231ps ymm10,ymm12,ymm13
    "c4 42 1d b8 dd "       # 86: vfmadd231ps ymm11,ymm12,ymm13
    "48 ff cf "             # 8b: dec rdi
    "75 bf "                # 8e: jne 4f (loop)
    "c5 f8 77 "             # 90: vzeroupper                      (done)
    "c3"                    # 93: ret
)
# fmt: on


@dataclass(frozen=True)
class _Loop:
    """One embedded FMA loop and what one of its iterations computes."""

    code: bytes
    lanes: int  # float32 lanes per vector register
    accumulators: int  # independent vfmadd231ps per iteration
    cpu_flags: frozenset[str]  # /proc/cpuinfo flags the code needs

    @property
    def flops_per_iteration(self) -> int:
        """FLOPs of one loop iteration: accumulators x lanes x 2 (multiply + add)."""
        return self.accumulators * self.lanes * 2


# Ordered best first: available_isas() and the default choice follow this order.
_LOOPS: dict[str, _Loop] = {
    "avx512": _Loop(_ZMM_LOOP, lanes=16, accumulators=12, cpu_flags=frozenset({"avx512f"})),
    "avx2": _Loop(_YMM_LOOP, lanes=8, accumulators=12, cpu_flags=frozenset({"avx2", "fma"})),
}

# Effective-clock estimate: FMA pipes per core assumed by FmaPeak.ghz_estimate.
_ASSUMED_FMA_PIPES = 2


# The peak is the best trial, confirmed: trials go on (up to MAX_TRIALS_FACTOR x repeats)
# until the second best is within PEAK_AGREEMENT of the best. A machine that cannot give
# two trials that agree (another process took a core for part of each) gives a peak
# marked unreliable, and so does one where other processes were busy while it ran.
PEAK_AGREEMENT = 0.03
MAX_TRIALS_FACTOR = 3


@dataclass(frozen=True)
class FmaPeak:
    """A measured float32 FMA peak. All rates are in GFLOP/s (10**9 FLOP/s)."""

    gflops: float  # aggregate over all threads: the best trial (see PEAK_AGREEMENT)
    per_thread_gflops: float  # gflops / threads
    threads: int
    isa: str  # "avx512" or "avx2"
    # The clock (GHz) the result implies if every core had 2 full-width FMA pipes:
    # per_thread_gflops / (2 pipes x lanes x 2 FLOPs). A diagnostic, not a clock reading: it
    # reads half the real clock on cores that split a 512-bit FMA into two 256-bit halves
    # (AMD Zen 4) or that have a single 512-bit FMA pipe, and low when threads share a core.
    ghz_estimate: float
    repeats: int  # trials run (at least the ``repeats`` asked for)
    spread: float  # (max - min) / median of the trials' aggregate GFLOP/s
    trials: tuple[float, ...] = ()  # every trial's aggregate GFLOP/s, in order
    reliable: bool = True  # the best two trials agree and the machine was not busy
    reason: str = ""  # why not reliable

    def to_dict(self) -> dict:
        """What a result's ``environment.fma_peak`` records."""
        return {"gflops": self.gflops, "threads": self.threads, "isa": self.isa,
                "spread": self.spread, "trials": list(self.trials),
                "reliable": self.reliable, "reason": self.reason}


def judge_trials(rates: list[float]) -> tuple[bool, str]:
    """(the best trial is confirmed by the second best within PEAK_AGREEMENT, why not)."""
    if len(rates) < 2:
        return False, "a single trial cannot confirm itself"
    best, second = sorted(rates, reverse=True)[:2]
    if second < best * (1 - PEAK_AGREEMENT):
        return False, (f"trials disagree: best {best:.1f}, next {second:.1f} GFLOP/s "
                       f"(more than {100 * PEAK_AGREEMENT:.0f}% apart)")
    return True, ""


def _is_x86_64_linux() -> bool:
    """True on a 64-bit Python running on x86-64 Linux."""
    return (
        sys.platform.startswith("linux")
        and platform.machine().lower() in ("x86_64", "amd64")
        and struct.calcsize("P") == 8
    )


def _cpu_flags() -> frozenset[str]:
    """CPU flags that every core lists in /proc/cpuinfo; empty if it cannot be read.

    Linux drops a flag such as avx512f when the kernel does not save that register state, so
    a listed flag means the OS supports it too.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return frozenset()
    common: set[str] | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            flags = set(value.split())
            common = flags if common is None else common & flags
    return frozenset(common or ())


def available_isas() -> list[str]:
    """The FMA loops this CPU can run, best first (``"avx512"``, ``"avx2"``); ``[]`` if none."""
    if not _is_x86_64_linux():
        return []
    flags = _cpu_flags()
    return [name for name, loop in _LOOPS.items() if loop.cpu_flags <= flags]


_LoopFn = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)


@functools.cache
def _load(isa: str) -> ctypes._CFuncPtr:
    """Copy one loop into executable memory and return it as a ctypes function.

    The mapping is never unmapped: the returned function object keeps it alive (and the cache
    keeps the function), so the code cannot vanish under a running thread.
    """
    code = _LOOPS[isa].code
    size = max(mmap.PAGESIZE, -(-len(code) // mmap.PAGESIZE) * mmap.PAGESIZE)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        mprotect = libc.mprotect
        mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        mprotect.restype = ctypes.c_int
    except (OSError, AttributeError) as exc:
        raise UnsupportedError(f"cannot reach libc mprotect: {exc}") from exc

    rw = mmap.PROT_READ | mmap.PROT_WRITE
    try:
        buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=rw)
    except OSError as exc:
        raise UnsupportedError(f"cannot map memory for the FMA loop: {exc}") from exc
    buf.write(code)
    anchor = ctypes.c_char.from_buffer(buf)  # pins buf: it can no longer be closed or moved
    address = ctypes.addressof(anchor)
    # W^X: write first, then flip to read+execute.
    if mprotect(address, size, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
        errno = ctypes.get_errno()
        # Some kernels forbid flipping a written page to exec but allow a RWX map outright.
        del anchor
        buf.close()
        try:
            buf = mmap.mmap(
                -1,
                size,
                flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                prot=rw | mmap.PROT_EXEC,
            )
        except OSError as exc:
            raise UnsupportedError(
                "executable memory refused (mprotect PROT_EXEC failed: "
                f"{os.strerror(errno)}; mmap PROT_EXEC failed: {exc})"
            ) from exc
        buf.write(code)
        anchor = ctypes.c_char.from_buffer(buf)
        address = ctypes.addressof(anchor)
    fn = _LoopFn(address)
    fn._hwbench_keepalive = (buf, anchor)  # type: ignore[attr-defined]
    return fn


def _default_threads() -> int:
    """CPUs this process may run on (its affinity mask), else os.cpu_count()."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is not None:
        try:
            return max(1, len(getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def _time_once(fn: ctypes._CFuncPtr, iterations: int) -> float:
    """Seconds one call of ``fn(iterations)`` takes on the calling thread."""
    start = time.perf_counter()
    fn(iterations)
    return time.perf_counter() - start


def _calibrate(fn: ctypes._CFuncPtr, seconds: float) -> int:
    """Iterations for one thread to run about ``seconds`` (this also warms the core up)."""
    probe = min(seconds, 0.02)
    n = 1024
    elapsed = _time_once(fn, n)
    while elapsed < probe:
        grow = 64.0 if elapsed <= 0 else min(64.0, max(2.0, 1.2 * probe / elapsed))
        n = int(n * grow)
        elapsed = _time_once(fn, n)
    return max(1, round(n * seconds / elapsed))


def _timed_run(fn: ctypes._CFuncPtr, iterations: int, threads: int) -> float:
    """Seconds from releasing ``threads`` threads together to the last one finishing."""
    barrier = threading.Barrier(threads + 1)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            fn(iterations)  # ctypes releases the GIL for the call
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            failures.append(exc)

    workers = [threading.Thread(target=worker, name=f"hwbench-fma-{i}") for i in range(threads)]
    try:
        for t in workers:
            t.start()
        barrier.wait()
    except BaseException:
        barrier.abort()
        for t in workers:
            if t.is_alive():
                t.join()
        raise
    start = time.perf_counter()
    for t in workers:
        t.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise failures[0]
    return elapsed


def measure_fma_peak(
    threads: int | None = None,
    seconds: float = 0.3,
    repeats: int = 5,
    isa: str | None = None,
) -> FmaPeak:
    """Measure the float32 FMA peak with ``threads`` threads (default: every usable CPU).

    Each trial starts all threads at a barrier, each running the loop for about ``seconds``,
    and times from the barrier to the last join. The result is the best trial, after at
    least ``repeats`` trials and until the second best agrees with it within
    ``PEAK_AGREEMENT`` (at most ``MAX_TRIALS_FACTOR * repeats`` trials): a trial can only
    be slowed down, never sped up, by whatever else runs, so the best agreed trial is the
    stable figure. ``reliable`` is False when no two trials agree or the machine was busy.
    ``isa`` is ``"avx512"`` or ``"avx2"``; the default is the best one the CPU has.

    Raises ``hwbench.errors.UnsupportedError`` off x86-64 Linux, when the CPU lacks ``isa``
    or when the OS refuses executable memory, and ``hwbench.errors.ArgumentError`` for a bad
    argument value.
    """
    if threads is None:
        threads = _default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ArgumentError(f"threads must be a positive int, got {threads!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ArgumentError(f"repeats must be a positive int, got {repeats!r}")
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ArgumentError(f"seconds must be a positive finite number, got {seconds!r}")
    if isa is not None and isa not in _LOOPS:
        raise ArgumentError(f"isa must be one of {sorted(_LOOPS)} or None, got {isa!r}")

    if not _is_x86_64_linux():
        raise UnsupportedError(
            f"the FMA peak loops need x86-64 Linux, not {sys.platform}/{platform.machine()}"
        )
    isas = available_isas()
    if isa is None:
        if not isas:
            raise UnsupportedError("this CPU has neither AVX-512F nor AVX2+FMA")
        isa = isas[0]
    elif isa not in isas:
        raise UnsupportedError(
            f"this CPU cannot run the {isa} FMA loop (it supports: {', '.join(isas) or 'none'})"
        )


    loop = _LOOPS[isa]
    fn = _load(isa)
    with Monitor() as monitor:
        iterations = _calibrate(fn, float(seconds))
        flops = float(iterations) * loop.flops_per_iteration * threads
        rates: list[float] = []
        while len(rates) < repeats * MAX_TRIALS_FACTOR:
            rates.append(flops / _timed_run(fn, iterations, threads) / 1e9)
            if len(rates) >= repeats and judge_trials(rates)[0]:
                break
    reliable, reason = judge_trials(rates)
    if monitor.state.get("busy"):
        reliable = False
        reason = "; ".join(filter(None, [reason, "other processes were busy "
                                         f"({100 * monitor.state['others_share']:.0f}% of "
                                         "the CPU) while it ran"]))
    best = max(rates)
    per_thread = best / threads
    return FmaPeak(
        gflops=best,
        per_thread_gflops=per_thread,
        threads=threads,
        isa=isa,
        ghz_estimate=per_thread / (_ASSUMED_FMA_PIPES * loop.lanes * 2),
        repeats=len(rates),
        spread=(max(rates) - min(rates)) / statistics.median(rates),
        trials=tuple(rates),
        reliable=reliable,
        reason=reason,
    )
