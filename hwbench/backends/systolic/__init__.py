"""The ``systolic`` backend: a simulated TPU-style int8 systolic-array accelerator.

One module per part, as docs/simulator.md describes:
``config`` (the machine: presets and SCALE-Sim .cfg files), ``topology`` (layers as GEMMs;
SCALE-Sim topology CSVs), ``functional`` (the exact values), ``cycle_model`` (PEs and
registers clock by clock: the timing ground truth), ``analytic`` (per-fold cycles, memory
traffic and stalls, fast) and ``backend`` (the kernel interface and its counters).
This package simulates what it is given; reading models and writing reports is
``hwbench.harness.suites.simulate``'s.
"""

from hwbench.backends.systolic.backend import SystolicBackend
from hwbench.backends.systolic.config import PRESETS, SystolicConfig, load_config

__all__ = ["SystolicBackend", "SystolicConfig", "PRESETS", "load_config"]
