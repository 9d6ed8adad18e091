"""Backends: the Hardware layer. ``get_backend("cpu")`` and ``list_backends()``.

Backend modules are imported lazily, by name, so that importing hwbench never pulls in
CuPy or pyopencl; a backend whose libraries are missing is *listed* as unavailable with
the reason instead of failing the import.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field

from hwbench.backends.base import Backend, default_threads
from hwbench.errors import ArgumentError, BackendUnavailableError

# name -> "module:Class", in the order `--backend all` runs them.
REGISTRY: dict[str, str] = {
    "numpy": "hwbench.backends.numpy_backend:NumpyBackend",
    "cpu": "hwbench.backends.cpu:CpuBackend",
    "systolic": "hwbench.backends.systolic:SystolicBackend",
    "opencl": "hwbench.backends.opencl:OpenclBackend",
    "cuda": "hwbench.backends.cuda:CudaBackend",
}

__all__ = ["Backend", "BackendStatus", "get_backend", "list_backends", "backend_class",
           "parse_backend_name", "expand_backends", "default_threads", "REGISTRY"]


@dataclass(frozen=True)
class BackendStatus:
    """One row of ``hwbench list``."""

    name: str
    available: bool
    reason: str
    devices: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


def parse_backend_name(name: str) -> tuple[str, str | None]:
    """``"opencl:1"`` -> ``("opencl", "1")``; ``"cpu"`` -> ``("cpu", None)``."""
    if not isinstance(name, str) or not name.strip():
        raise ArgumentError(f"argument 'backend' must be a non-empty string, got {name!r}")
    base, _, device = name.strip().partition(":")
    if base not in REGISTRY:
        raise ArgumentError(
            f"argument 'backend': unknown backend {base!r}; known: {', '.join(REGISTRY)}"
        )
    return base, (device or None)


def backend_class(base: str) -> type[Backend]:
    module_name, _, class_name = REGISTRY[base].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_backend(name: str, **options) -> Backend:
    """Create a backend by name (``"numpy"``, ``"cpu"``, ``"cpu:mkl"``, ...).

    Options (``threads=``, ``check_finite=``) go to the backend's constructor.
    Raises ``BackendUnavailableError`` saying why when it cannot run here.
    """
    base, device = parse_backend_name(name)
    try:
        cls = backend_class(base)
    except ImportError as exc:  # a missing optional dependency
        raise BackendUnavailableError(f"backend {base!r} cannot be imported: {exc}") from exc
    ok, why = cls.available()
    if not ok:
        raise BackendUnavailableError(f"backend {base!r} is unavailable: {why}")
    accepted = inspect.signature(cls).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    unknown = sorted(k for k in options if (k not in accepted and not takes_any)
                     or k == "device")
    if unknown:
        known = [k for k, p in accepted.items() if p.kind is p.KEYWORD_ONLY]
        raise ArgumentError(f"argument(s) {', '.join(map(repr, unknown))}: not options of "
                            f"backend {base!r} (its options: {', '.join(known)})")
    return cls(device, **options)


def list_backends() -> list[BackendStatus]:
    """Every registered backend with its availability and, if unavailable, why."""
    rows = []
    for base in REGISTRY:
        try:
            cls = backend_class(base)
        except ImportError as exc:
            rows.append(BackendStatus(base, False, f"import failed: {exc}"))
            continue
        ok, why = cls.available()
        devices = cls.devices() if ok else []
        rows.append(BackendStatus(base, ok, why, devices, cls.versions() if ok else {}))
    return rows


def expand_backends(spec: str) -> list[str]:
    """``"all"`` -> every available backend and device (``devices()[0]`` is the default,
    so ``cpu`` then ``cpu:mkl``); ``"numpy,cpu:mkl"`` -> that list, checked."""
    if spec.strip() == "all":
        names = []
        for row in list_backends():
            if row.available:  # the default device first, then every other device
                names.append(row.name)
                names.extend(f"{row.name}:{device}" for device in row.devices[1:])
        return names
    names = [part.strip() for part in spec.split(",") if part.strip()]
    for name in names:
        parse_backend_name(name)
    if not names:
        raise ArgumentError("argument 'backend' names no backend")
    return names
