"""What a result must say about where it was measured: machine, libraries, settings."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import numpy as np

from hwbench.harness.running import omp_wait
from hwbench.version import __version__


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(openmp_wait: dict[str, Any] | None = None) -> dict[str, Any]:
    """Host, OS, Python and NumPy; backends add their own ``info()`` per row.
    ``openmp_wait``: the workers' resolved wait policy (``omp_wait.resolve``), when the
    caller chose one; else the default policy's."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return {
        "hwbench": __version__,
        "host": platform.node(),
        "cpu": cpu_model(),
        "cores_available": cores,
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "env": {k: v for k, v in os.environ.items()
                if k.startswith(("HWBENCH_", "OMP_", "MKL_", "ONEDNN_", "DNNL_", "OPENBLAS_",
                                 "GOMP_"))},
        "openmp_wait": omp_wait.default() if openmp_wait is None else openmp_wait,
    }
