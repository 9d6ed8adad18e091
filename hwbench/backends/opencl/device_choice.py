"""Plain ``opencl`` on PoCL: each Session's graph runs on PoCL's ``pthread`` or ``basic``
device, whichever its work says is faster.

PoCL's ``pthread`` device spreads a kernel's work-groups over the cores, but every host
wait wakes its worker threads (~35 µs) and every launch is handed to them; ``basic`` runs
each command in the thread that waits for it (~1 µs a wait) on one core. A graph whose
one-thread time is small against those fixed costs (mlp: ~10 µs of work a run) runs
several times faster on ``basic``; a big one (ResNet-50) needs the cores.

The choice is per Session, from the compiled graph (``GraphWork``: FLOPs, bytes, node
count as the launches, which the Session counts: backends do not import the graph
layer), never from a model's name. Each device has a backend of its own
(``OpenclBackend`` for ``basic`` is made once per ``pthread`` backend, then shared by its
sessions): weights, buffers, programs and the kernel cache belong to the device that runs
them. Only PoCL's default device chooses: ``opencl:N``, ``opencl:pthread``,
``opencl:basic``, ``device_choice=False`` or ``HWBENCH_OPENCL_DEVICE_CHOICE=0`` keep one
device, and a GPU platform is never touched.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from typing import Any

from hwbench.backends import memory
from hwbench.backends.opencl import runtime
from hwbench.errors import ArgumentError

ENV = "HWBENCH_OPENCL_DEVICE_CHOICE"  # "0": plain opencl stays on PoCL's pthread device
# The cost model's constants, measured on the 2-core Zen 4 VM (PoCL 3.0; the break-even
# in results/amd-epyc-zen4-2core/opencl-device-choice-20261205.md, from
# scripts/opencl_device_choice.py): one core of ``basic`` runs ~25 GFLOP/s and moves
# ~10 GB/s in hwbench's kernels; ``pthread`` adds ~35 µs per run (the one wait of a
# recorded run) and ~40 µs per launch that ``basic`` does not (the hand-off to its
# worker threads: BEGAN b8, 7 nodes, ran 1.6x faster on ``basic``).
BASIC_FLOPS_PER_S = 25e9
BASIC_BYTES_PER_S = 10e9
PTHREAD_WAIT_S = 35e-6
PTHREAD_LAUNCH_S = 40e-6


@dataclass(frozen=True)
class GraphWork:
    """What one run of a graph asks of a device: FLOPs, bytes moved, launches."""

    flops: int
    bytes: int
    launches: int

    @property
    def basic_seconds(self) -> float:
        """The run's estimated time on one core of ``basic``."""
        return self.flops / BASIC_FLOPS_PER_S + self.bytes / BASIC_BYTES_PER_S

    def pthread_seconds(self, cores: int) -> float:
        """The same work on ``pthread`` over ``cores``, with its fixed costs."""
        return (self.basic_seconds / max(cores, 1) + PTHREAD_WAIT_S
                + self.launches * PTHREAD_LAUNCH_S)


def prefers_basic(work: GraphWork, cores: int) -> bool:
    """Whether ``basic`` is estimated faster than ``pthread`` on ``cores`` cores (ties go
    to ``basic``: it leaves the other cores free)."""
    return work.basic_seconds <= work.pthread_seconds(cores)


def enabled_by_env() -> bool:
    """False where ``HWBENCH_OPENCL_DEVICE_CHOICE`` is "0", "false", "no" or "off"."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def basic_partner(selector: str | None, entry: runtime.DeviceEntry,
                  option: bool | None) -> runtime.DeviceEntry | None:
    """PoCL's ``basic`` device beside ``entry`` where this backend may choose per Session:
    plain ``opencl`` (no ``selector``) landed on a PoCL device that is not ``basic``, the
    ``device_choice`` option is not False (None: the environment decides) and the platform
    lists a ``basic`` device. None otherwise: one device."""
    if option is not None and not isinstance(option, bool):
        raise ArgumentError(f"argument 'device_choice' must be a bool or None, got {option!r}")
    if option is False or (option is None and not enabled_by_env()):
        return None
    if (selector or "").strip() or entry.pocl_basic or "pocl" not in entry.vendor.lower():
        return None
    for other in runtime.discover():
        if other.pocl_basic and other.platform_index == entry.platform_index:
            return other
    return None


def setup(owner: Any, selector: str | None, entry: runtime.DeviceEntry,
          option: bool | None, options: dict[str, Any]) -> DeviceChoice | None:
    """The ``DeviceChoice`` of a backend made with ``options`` (None: one device)."""
    basic = basic_partner(selector, entry, option)
    return None if basic is None else DeviceChoice(owner, basic, options)


def choose(backend: Any, work: GraphWork) -> tuple[Any, str | None]:
    """``backend.graph_device``: its ``DeviceChoice``'s, else ``backend`` and None."""
    made = backend.device_choice
    return (backend, None) if made is None else made.choose(work)


class DeviceChoice:
    """The ``basic`` side of one ``pthread`` backend: its backend made on first need."""

    def __init__(self, owner: Any, basic: runtime.DeviceEntry, options: dict[str, Any]
                 ) -> None:
        # weakly: the owner holds this, and a cycle would keep both backends (a PoCL
        # context each, the basic pool's blocks) until the garbage collector ran
        self._owner = weakref.ref(owner)
        self._owner_type = type(owner)
        self.entry = basic
        self.options = options  # the owner's own constructor options, passed on
        self._backend: Any = None

    def backend(self) -> Any:
        """The ``basic`` device's backend, named ``opencl:basic`` where that name selects
        this very device (else by its index)."""
        if self._backend is None:
            name = "basic" if runtime.select("basic") == self.entry else str(self.entry.index)
            self._backend = self._owner_type(name, device_choice=False, **self.options)
        return self._backend

    @property
    def owner(self) -> Any:
        """The ``pthread`` backend this belongs to (alive while it is asked to choose)."""
        return self._owner()

    def choose(self, work: GraphWork) -> tuple[Any, str]:
        """(the backend to run a graph of ``work`` on, what a result records as its
        device)."""
        owner = self.owner
        if prefers_basic(work, owner.dev.compute_units):
            chosen, note = self.backend(), f"{self.entry.name} (chosen: small graph)"
            other = owner
        else:
            chosen, note = owner, f"{owner.dev.entry.name} (chosen: large graph)"
            other = self._backend
        if other is not None:  # what sessions before left there (the Executor trims
            memory.trim(other)  # the chosen one): a worker holds what one model needs
        return chosen, note
