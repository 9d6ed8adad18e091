"""Tests for hwbench.harness.measure.peak: the embedded FMA loops run, scale with threads, and
refuse what the CPU cannot do. No test asserts a wall-clock time; rates get wide plausibility
bounds."""

from __future__ import annotations

import math

import pytest

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.harness.measure import peak

ISAS = peak.available_isas()
SECONDS = 0.05


def _requires(isa: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(isa not in ISAS, reason=f"CPU lacks {isa} (has: {ISAS or 'none'})")


def _check_plausible(result: peak.FmaPeak) -> None:
    assert math.isfinite(result.gflops) and result.gflops > 0
    assert 1.0 < result.per_thread_gflops < 10_000.0
    assert result.gflops == pytest.approx(result.per_thread_gflops * result.threads)
    assert math.isfinite(result.spread) and result.spread >= 0
    assert math.isfinite(result.ghz_estimate) and result.ghz_estimate > 0


@pytest.mark.parametrize("isa", [pytest.param(i, marks=_requires(i)) for i in ("avx512", "avx2")])
def test_loop_runs_and_is_plausible(isa: str) -> None:
    result = peak.measure_fma_peak(threads=1, seconds=SECONDS, repeats=3, isa=isa)
    assert result.isa == isa
    assert result.threads == 1
    assert 3 <= result.repeats <= 3 * peak.MAX_TRIALS_FACTOR  # more when trials disagree
    assert len(result.trials) == result.repeats and result.gflops == max(result.trials)
    _check_plausible(result)


@pytest.mark.parametrize("isa", [pytest.param(i, marks=_requires(i)) for i in ("avx512", "avx2")])
def test_loop_returns_its_count_and_handles_zero(isa: str) -> None:
    fn = peak._load(isa)
    assert fn(0) == 0  # must return at once, not loop 2**64 times
    assert fn(1) == 1
    assert fn(12345) == 12345


@pytest.mark.skipif(not ISAS, reason="no FMA loop runs on this machine")
def test_default_isa_is_best_available() -> None:
    result = peak.measure_fma_peak(threads=1, seconds=SECONDS, repeats=1)
    assert result.isa == ISAS[0]
    _check_plausible(result)


@pytest.mark.skipif(not ISAS, reason="no FMA loop runs on this machine")
def test_loop_calls_release_the_gil() -> None:
    """Python runs in another thread while a loop call is inside the native code (a held
    GIL would stop it).

    Checked by whether a spinning thread counts during the call, not by overlap or
    speed-up, so that a busy machine cannot fail it (an overlap test failed at load 10): the
    switch interval is raised so that the caller gives the GIL up only by the call itself.
    The speed-up is a benchmark (benchmarks/test_targets.py).
    """
    import sys
    import threading
    import time

    fn = peak._load(ISAS[0])
    iterations = peak._calibrate(fn, 0.1)
    count, stop = [0], threading.Event()

    def spin() -> None:
        while not stop.is_set():
            count[0] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1.0)  # no forced switch within the few bytecodes around the call
    spinner = threading.Thread(target=spin)
    try:
        spinner.start()
        while count[0] == 0:
            time.sleep(0)
        before = count[0]
        fn(iterations)
        after = count[0]
    finally:
        stop.set()
        spinner.join()
        sys.setswitchinterval(interval)
    assert after > before, "the spinning thread never ran during the loop call"


def test_isa_the_cpu_lacks_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peak, "_is_x86_64_linux", lambda: True)
    monkeypatch.setattr(peak, "_cpu_flags", lambda: frozenset({"avx", "avx2", "fma"}))
    assert peak.available_isas() == ["avx2"]
    assert "avx512" not in peak.available_isas()
    with pytest.raises(UnsupportedError, match="avx512"):
        peak.measure_fma_peak(threads=1, seconds=SECONDS, repeats=1, isa="avx512")


def test_no_fma_cpu_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peak, "_is_x86_64_linux", lambda: True)
    monkeypatch.setattr(peak, "_cpu_flags", lambda: frozenset({"sse2", "avx"}))
    assert peak.available_isas() == []
    with pytest.raises(UnsupportedError):
        peak.measure_fma_peak(threads=1, seconds=SECONDS, repeats=1)


def test_not_x86_64_linux_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peak, "_is_x86_64_linux", lambda: False)
    assert peak.available_isas() == []
    with pytest.raises(UnsupportedError):
        peak.measure_fma_peak(threads=1, seconds=SECONDS, repeats=1)


def test_available_isas_are_known_and_ordered() -> None:
    assert set(ISAS) <= {"avx512", "avx2"}
    assert [i for i in ("avx512", "avx2") if i in ISAS] == ISAS


@pytest.mark.parametrize(
    "kwargs",
    [
        {"isa": "neon"},
        {"threads": 0},
        {"threads": 1.5},
        {"repeats": 0},
        {"seconds": 0},
        {"seconds": float("nan")},
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ArgumentError):
        peak.measure_fma_peak(**kwargs)  # type: ignore[arg-type]


def test_flop_count_per_iteration() -> None:
    assert peak._LOOPS["avx512"].flops_per_iteration == 12 * 16 * 2
    assert peak._LOOPS["avx2"].flops_per_iteration == 12 * 8 * 2
