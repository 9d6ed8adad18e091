"""Rows set against the host CPU's measured FMA peak, and whether that peak can be trusted.

A row at more than 100 % of the peak, or a host-CPU backend's GEMM ceiling above it, proves
the peak wrong (measured while the machine was busy): the peak is then marked unreliable,
and every row that divides by it carries the ``peak-unreliable`` flag.
"""

from __future__ import annotations

from typing import Any

from hwbench.backends import REGISTRY, backend_class
from hwbench.harness.results.result_files import write_json_atomic
from hwbench.harness.running.machine_state import merge
from hwbench.harness.suites.peers import peer_class


def runs_on_host_cpu(name: str) -> bool:
    """Whether backend or peer ``name`` (``cpu:mkl``, ``torch``, ...) computes on the host
    CPU's cores, by its class's ``runs_on_host_cpu`` (no backend is created)."""
    base = name.partition(":")[0]
    try:
        cls = backend_class(base) if base in REGISTRY else peer_class(base)
    except ImportError:
        return False
    return bool(getattr(cls, "runs_on_host_cpu", False))


def _mark_unreliable(peak: dict[str, Any], why: str) -> None:
    peak.update(reliable=False, reason="; ".join(filter(None, [peak.get("reason"), why])))


def add_peak_fraction(row: dict[str, Any], peak: dict[str, Any] | None) -> None:
    """% of the measured CPU FMA peak, for float32 GEMM/conv rows of host-CPU backends."""
    if not (peak and row.get("status") == "ok" and row["op"] in ("gemm", "conv2d")
            and runs_on_host_cpu(row.get("backend", ""))):
        return
    row["fraction_of_peak"] = row["gflops"] / peak["gflops"]
    if row["fraction_of_peak"] > 1.0 and peak.get("reliable", True):
        _mark_unreliable(peak, f"{row['case']} on {row['backend']} ran at "
                               f"{100 * row['fraction_of_peak']:.0f}% of it")
    if not peak.get("reliable", True):
        row["flags"] = [*row.get("flags", []), "peak-unreliable"]


def check_peak_against_ceilings(peak: dict[str, Any], backends: dict[str, Any]) -> None:
    """A host-CPU backend's measured GEMM ceiling above the FMA peak proves the peak low
    (the roofline would draw its 'peak' under the GEMM roofs): mark it unreliable."""
    for name, info in backends.items():
        ceilings = info.get("ceilings") if isinstance(info, dict) else None
        host = runs_on_host_cpu(name) or "CPU" in str(  # an OpenCL CPU device, say
            info.get("device_type", "") if isinstance(info, dict) else "")
        gflops = ceilings.get("gflops") if isinstance(ceilings, dict) else None
        if host and isinstance(gflops, (int, float)) and gflops > peak["gflops"]:
            _mark_unreliable(peak, f"{name}'s GEMM ceiling ran at "
                                   f"{100 * gflops / peak['gflops']:.0f}% of it")
            return


def finish_machine_state(result: dict[str, Any], monitor: Any, path: Any) -> None:
    """The run's ``machine_state`` (busy if the run's window or any row was); rows that
    divide by a peak found unreliable after they were made get their flag too. Saves the
    result to ``path`` (when there is one)."""
    monitor.stop()
    peak = (result.get("environment") or {}).get("fma_peak")
    if isinstance(peak, dict) and peak.get("reliable", True):
        check_peak_against_ceilings(peak, result.get("backends") or {})
    if isinstance(peak, dict) and not peak.get("reliable", True):
        for row in result["rows"]:
            if "fraction_of_peak" in row and "peak-unreliable" not in row.get("flags", []):
                row["flags"] = [*row.get("flags", []), "peak-unreliable"]
    result["machine_state"] = merge(monitor.state, result["rows"])
    if path:
        write_json_atomic(path, result)
