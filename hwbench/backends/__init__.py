"""Backends: the Hardware layer. ``get_backend("cpu")`` and ``list_backends()``.

Backend modules are imported lazily, by name, so that importing hwbench never pulls in
CuPy or pyopencl; a backend whose libraries are missing is *listed* as unavailable with
the reason instead of failing the import.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field

from hwbench.backends import onnxruntime_requant
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
# Devices beyond a backend's default that the test and benchmark suites always list, each
# skipped with the reason where it is absent: MKL's CBLAS beside oneDNN, and Intel's CPU
# OpenCL runtime beside PoCL (the opencl-intel extra, 225 MB: not in CI's `all`).
NAMED_FLAVOURS: dict[str, tuple[str, ...]] = {"cpu": ("mkl",), "opencl": ("intel",)}
BACKEND_SCOPES = ("available", "listed", "known")

__all__ = ["Backend", "BackendStatus", "get_backend", "list_backends", "backend_class",
           "backend_names", "parse_backend_name", "expand_backends", "default_threads",
           "NAMED_FLAVOURS", "REGISTRY"]


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
    device, named = onnxruntime_requant.split_device(device)
    options = dict(options)
    in_mode = onnxruntime_requant.choose(named, options)
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
    backend = cls(device, **options)
    if in_mode:  # int8 as onnxruntime computes it (``onnxruntime_requant``)
        backend.requantization = onnxruntime_requant.ONNXRUNTIME
    return backend


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


def backend_names(scope: str = "available") -> list[str]:
    """Every backend name with its device flavours, each backend's default first (``cpu``
    then ``cpu:mkl``): the one list ``--backend all``, the pytest plugin and the suites'
    conftests run over.

    ``"available"``: backends that run here, with every device each finds beyond its
    default (``devices()[0]``); ``"listed"``: those plus unavailable backends by bare name
    (a test run skips them, saying why); ``"known"``: every registered backend and its
    ``NAMED_FLAVOURS``, installed or not, so that test ids are the same on every machine.
    """
    if scope not in BACKEND_SCOPES:
        raise ArgumentError(f"argument 'scope' must be one of {', '.join(BACKEND_SCOPES)}, "
                            f"got {scope!r}")
    if scope == "known":
        return [name for base in REGISTRY
                for name in [base, *(f"{base}:{f}" for f in NAMED_FLAVOURS.get(base, ()))]]
    names = []
    for row in list_backends():
        if row.available or scope == "listed":  # an unavailable one lists no devices
            names.append(row.name)
            names.extend(f"{row.name}:{device}" for device in row.devices[1:])
    return names


def expand_backends(spec: str) -> list[str]:
    """``"all"`` -> every available backend and device (``backend_names()``);
    ``"numpy,cpu:mkl"`` -> that list, checked."""
    if spec.strip() == "all":
        return backend_names()
    names = [part.strip() for part in spec.split(",") if part.strip()]
    for name in names:
        parse_backend_name(name)
    if not names:
        raise ArgumentError("argument 'backend' names no backend")
    return names
