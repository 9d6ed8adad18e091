"""Cached kernel calls must not leak: 10,000 calls per op without resident-memory growth.

RSS is the *current* resident set from ``/proc/self/statm`` (``ru_maxrss`` only ever
grows, so it could not show memory coming back). The cpu backend's caches (primitives,
packed weights, frozen-array bookkeeping) are checked directly as well.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads the resident set size from /proc/self/statm")

WARMUP = 200
CALLS = 10_000
MiB = 1 << 20
MAX_GROWTH = 8 * MiB


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        resident_pages = int(fh.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def settled_rss() -> int:
    gc.collect()
    return rss_bytes()


def small_calls(be) -> dict[str, Callable[[], object]]:
    """One small call per op, on device arrays made once (the cached path)."""
    rng = np.random.default_rng(7)
    f32 = np.float32
    a = be.asarray(rng.standard_normal((8, 8)).astype(f32))
    b = be.asarray(rng.standard_normal((8, 8)).astype(f32))
    bias = be.asarray(rng.standard_normal(8).astype(f32))
    x = be.asarray(rng.standard_normal(256).astype(f32))
    cx = be.asarray(rng.standard_normal((1, 2, 5, 5)).astype(f32))
    cw = be.asarray(rng.standard_normal((3, 2, 3, 3)).astype(f32))
    ia = be.asarray(rng.integers(0, 256, (8, 16), dtype=np.uint8))
    ib = be.asarray(rng.integers(-128, 128, (16, 8), dtype=np.int8))
    za, zb = np.uint8(128), np.int8(0)
    return {
        "gemm": lambda: be.gemm(a, b, bias),
        "sigmoid": lambda: be.sigmoid(x),
        "conv2d": lambda: be.conv2d(cx, cw, padding=1),
        "gemm_int8": lambda: be.gemm_int8(ia, ib, za, zb),
    }


def test_rss_probe_sees_an_allocation():
    """The probe must be able to see growth, or the tests below could never fail."""
    import mmap

    before = settled_rss()
    # An anonymous mapping of its own: the heap's state (what earlier tests freed and
    # malloc kept) cannot hide this allocation or its release.
    block = mmap.mmap(-1, 48 * MiB)
    np.frombuffer(block, dtype=np.uint8)[:] = 1  # touched, so resident
    grown = rss_bytes() - before
    block.close()
    assert grown >= 40 * MiB
    assert settled_rss() - before < 16 * MiB  # and released again


def test_cached_calls_do_not_grow_memory(backend):
    calls = small_calls(backend)
    for fn in calls.values():
        for _ in range(WARMUP):
            fn()
    backend.synchronize()
    primitives = getattr(backend, "cached_primitives", None)
    before = settled_rss()
    for fn in calls.values():
        for _ in range(CALLS):
            fn()
    backend.synchronize()
    growth = settled_rss() - before
    assert growth < MAX_GROWTH, (
        f"{backend.full_name}: RSS grew {growth / MiB:.1f} MiB over {CALLS} calls of each of "
        f"{', '.join(calls)}")
    if primitives is not None:
        assert backend.cached_primitives == primitives, "cached calls created primitives"


def _cpu_caches(backend):
    if getattr(backend, "frozen", None) is None:
        pytest.skip(f"{backend.full_name} keeps no per-array caches")
    return backend.frozen.sizes


def test_cpu_primitive_cache_is_used(backend):
    """A cached call must reuse the primitive: one per distinct problem, not per call."""
    if not hasattr(backend, "cached_primitives"):
        pytest.skip(f"{backend.full_name} has no primitive cache")
    x = backend.asarray(np.ones((1, 2, 7, 7), np.float32))
    w = backend.asarray(np.ones((4, 2, 3, 3), np.float32))
    backend.conv2d(x, w, padding=1)
    count = backend.cached_primitives
    for _ in range(5):
        backend.conv2d(x, w, padding=1)
    assert backend.cached_primitives == count
    backend.conv2d(x, w, padding=2)  # another problem: another primitive
    assert backend.cached_primitives == count + 1


def test_dropped_frozen_weights_are_forgotten(backend):
    """10,000 different frozen weight arrays: the packed copies go when the arrays go."""
    sizes = _cpu_caches(backend)
    rng = np.random.default_rng(3)
    x = backend.asarray(rng.standard_normal((1, 2, 5, 5)).astype(np.float32))
    host_w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    host_a = rng.standard_normal((8, 8)).astype(np.float32)
    b = backend.asarray(rng.standard_normal((8, 8)).astype(np.float32))

    # The cache is really used: a kept frozen weight is packed once, under its id.
    kept = backend.asarray(host_w)
    backend.conv2d(x, kept, padding=1)
    packed_once = backend.frozen.cached(kept)
    assert packed_once, "nothing was cached for a frozen weight"
    backend.conv2d(x, kept, padding=1)
    again = backend.frozen.cached(kept)
    assert again.keys() == packed_once.keys()
    assert all(again[tag] is packed_once[tag] for tag in again)
    del kept, packed_once, again
    gc.collect()

    for _ in range(WARMUP):
        backend.conv2d(x, backend.asarray(host_w), padding=1)
        backend.gemm(backend.asarray(host_a), b)
    baseline = sizes()
    before = settled_rss()
    peak = dict(baseline)
    for _ in range(CALLS):
        w = backend.asarray(host_w)
        backend.conv2d(x, w, padding=1)
        a = backend.asarray(host_a)
        backend.gemm(a, b)
        del w, a
        for key, value in sizes().items():
            peak[key] = max(peak[key], value)
    growth = settled_rss() - before
    after = sizes()
    assert after == baseline, f"caches kept dropped arrays: {baseline} -> {after}"
    # While alive, each iteration adds at most two frozen arrays, and derived values: a
    # packed weight and the NaN screen's verdicts on the two.
    assert peak["frozen"] <= baseline["frozen"] + 2, peak
    assert peak["derived"] <= baseline["derived"] + 3, peak
    assert growth < MAX_GROWTH, f"RSS grew {growth / MiB:.1f} MiB"


def test_buffer_pool_reuses_and_stays_under_its_limit():
    from hwbench.backends.cpu import BufferPool

    pool = BufferPool(limit_bytes=4 << 20)
    a = pool.empty((1 << 18,), np.float32)  # 1 MiB, held
    held = a.ctypes.data
    del a
    b = pool.empty((1 << 18,), np.float32)
    assert b.ctypes.data == held  # a free buffer of the size is handed out again
    kept = pool.empty((1 << 18,), np.float32)  # a second one while b is alive
    assert kept.ctypes.data != b.ctypes.data
    for n in range(2, 40):  # a sweep over many sizes, each dropped at once
        pool.empty((n << 16,), np.float32)
    assert pool.nbytes <= (4 << 20) + (40 << 18)  # the limit, plus the last new buffer
    b[...] = 1.0
    kept[...] = 2.0  # buffers still held were never given away
    assert float(b.sum()) == b.size and float(kept.sum()) == 2 * kept.size
