"""OpenCL discovery and the device: platforms, device selection, context and queue.

pyopencl is imported lazily (``load()``), so that importing hwbench never needs it and
``available()`` can say why it is missing instead of failing an import. Every OpenCL
status error goes through ``native_error``, which turns pyopencl's exception into an
``hwbench.errors`` one naming the call and the error.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwbench.errors import ArgumentError, BackendUnavailableError, NativeLibraryError

INSTALL_HINT = "pip install 'hwbench[opencl]' (pyopencl, and PoCL for CPUs)"


def cache_dir() -> Path:
    """hwbench's per-user cache folder: ``$HWBENCH_CACHE_DIR``, else ``~/.cache/hwbench``."""
    env = os.environ.get("HWBENCH_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "hwbench"


@functools.cache
def load() -> Any:
    """The pyopencl module. PoCL reads ``POCL_CACHE_DIR`` once, when it is first loaded:
    unless the user chose one, its compiled kernels go under hwbench's cache folder."""
    os.environ.setdefault("POCL_CACHE_DIR", str(cache_dir() / "pocl"))
    import pyopencl
    import pyopencl.array  # noqa: F401 - a submodule pyopencl does not import itself
    import pyopencl.tools  # noqa: F401 - the memory pool

    return pyopencl


def native_error(call: str, exc: Exception) -> NativeLibraryError:
    """A pyopencl/OpenCL failure as an hwbench error that names the call."""
    code = getattr(exc, "code", None)
    what = getattr(exc, "what", None)
    detail = what() if callable(what) else str(exc)
    suffix = f" (status {code})" if isinstance(code, int) else ""
    return NativeLibraryError(f"opencl: {call} failed{suffix}: {detail}")


@dataclass(frozen=True)
class DeviceEntry:
    """One OpenCL device as discovery found it; ``index`` is its ``opencl:N`` number."""

    index: int
    platform_index: int
    device_index: int  # within its platform
    platform: str
    name: str
    kind: str  # "GPU", "CPU", "ACCELERATOR", ...
    driver: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.name} [{self.kind}] on {self.platform} (driver {self.driver})"


def _kind(cl: Any, device_type: int) -> str:
    for name in ("GPU", "CPU", "ACCELERATOR", "CUSTOM"):
        if device_type & getattr(cl.device_type, name, 0):
            return name
    return "OTHER"


@functools.cache
def discover() -> tuple[DeviceEntry, ...]:
    """Every device of every platform, numbered across platforms in ICD order."""
    cl = load()
    entries = []
    for p_index, platform in enumerate(cl.get_platforms()):
        try:
            devices = platform.get_devices()
        except cl.Error:  # a platform with no devices raises DEVICE_NOT_FOUND
            continue
        for d_index, dev in enumerate(devices):
            entries.append(DeviceEntry(len(entries), p_index, d_index, platform.name.strip(),
                                       dev.name.strip(), _kind(cl, dev.type),
                                       dev.driver_version.strip(), dev.version.strip()))
    return tuple(entries)


def availability() -> tuple[bool, str]:
    """``(True, "")`` when pyopencl loads and sees a device; never raises."""
    try:
        load()
    except ImportError as exc:
        return False, f"pyopencl is not installed ({exc}); {INSTALL_HINT}"
    except Exception as exc:  # noqa: BLE001 - a broken ICD loader must not escape
        return False, f"pyopencl failed to load: {exc}"
    try:
        entries = discover()
    except Exception as exc:  # noqa: BLE001 - e.g. PLATFORM_NOT_FOUND_KHR without an ICD
        return False, f"no OpenCL platform ({exc}); {INSTALL_HINT}"
    if not entries:
        return False, f"OpenCL platforms found but no devices; {INSTALL_HINT}"
    return True, ""


def default_index(entries: tuple[DeviceEntry, ...]) -> int:
    """The first GPU, else the first CPU, else the first device."""
    for kind in ("GPU", "CPU"):
        for entry in entries:
            if entry.kind == kind:
                return entry.index
    return entries[0].index


def select(selector: str | None) -> DeviceEntry:
    """``None`` (the default device), an index ``"N"``, or a case-insensitive substring of
    the device or platform name (the first match)."""
    entries = discover()
    if not entries:
        raise BackendUnavailableError(f"opencl: no OpenCL device; {INSTALL_HINT}")
    if selector is None or not selector.strip():
        return entries[default_index(entries)]
    text = selector.strip()
    if text.isdigit():
        index = int(text)
        if index >= len(entries):
            raise ArgumentError(
                f"argument 'backend': opencl:{text} is out of range; devices are 0.."
                f"{len(entries) - 1}: " + "; ".join(f"{e.index}: {e.label}" for e in entries))
        return entries[index]
    needle = text.lower()
    for entry in entries:
        if needle in entry.name.lower() or needle in entry.platform.lower():
            return entry
    raise ArgumentError(
        f"argument 'backend': no OpenCL device matches {text!r}; devices: "
        + "; ".join(f"{e.index}: {e.label}" for e in entries))


class Device:
    """A context and an in-order, profiling command queue on one device (tinygrad's
    *Device* role)."""

    def __init__(self, entry: DeviceEntry) -> None:
        cl = load()
        self.cl = cl
        self.entry = entry
        try:
            self.device = cl.get_platforms()[entry.platform_index].get_devices()[
                entry.device_index]
            self.context = cl.Context([self.device])
            self.queue = cl.CommandQueue(
                self.context, properties=cl.command_queue_properties.PROFILING_ENABLE)
        except cl.Error as exc:
            raise native_error("creating the context and queue", exc) from exc
        extensions = self.device.extensions.split()
        self.extensions = frozenset(extensions)
        self.is_cpu = entry.kind == "CPU"
        self.max_work_group_size = int(self.device.max_work_group_size)
        self.local_mem_size = int(self.device.local_mem_size)
        self.compute_units = int(self.device.max_compute_units)

    @property
    def cache_key(self) -> str:
        """What compiled code and tuned parameters are valid for: platform, device name,
        driver, and the device's version string (PoCL names its target CPU there)."""
        e = self.entry
        return f"{e.platform} | {e.name} | {e.driver} | {e.version}"

    def synchronize(self) -> None:
        try:
            self.queue.finish()
        except self.cl.Error as exc:
            raise native_error("clFinish", exc) from exc
