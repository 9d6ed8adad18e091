"""OpenCL discovery and the device: platforms, device selection, context and queue.

pyopencl is imported lazily (``load()``), so that importing hwbench never needs it and
``available()`` can say why it is missing instead of failing an import. Every OpenCL
status error goes through ``native_error``, which turns pyopencl's exception into an
``hwbench.errors`` one naming the call and the error.

Runtimes that come as wheels register themselves differently. PoCL's wheel puts
``pocl.icd`` in ``pyopencl/.libs``, which pyopencl's bundled ICD loader always reads
(``PYOPENCL_HOME``). Intel's CPU runtime (the ``intel-opencl-rt`` wheel) ships an .icd file
naming a conda placeholder path, so no loader finds it: ``register_wheel_icds`` writes a
vendors folder naming its library and points ``OCL_ICD_VENDORS`` at it, before the loader
first lists platforms. Platforms added that way are numbered after all others, so that
installing the wheel changes neither ``opencl:N`` nor the default device.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwbench.errors import (
    ArgumentError,
    BackendUnavailableError,
    HwbenchError,
    NativeLibraryError,
)
from hwbench.files import write_atomic

INSTALL_HINT = "pip install 'hwbench[opencl]' (pyopencl, and PoCL for CPUs)"
INTEL_CPU_HINT = "pip install 'hwbench[opencl-intel]' (intel-opencl-rt, intel-cmplr-lib-rt)"
INTEL_CPU_DIST = "intel-opencl-rt"
INTEL_CPU_LIBRARY = "libintelocl.so"
INTEL_CPU_PLATFORM = "Intel(R) OpenCL"  # the CPU runtime's platform name (GPUs: "... Graphics")
# ocl-icd's own folder of .icd files; OCL_ICD_VENDORS replaces it, so it is copied over.
SYSTEM_VENDORS = "/etc/OpenCL/vendors"
# Says that OCL_ICD_VENDORS is hwbench's, not the user's: children number devices alike.
OWN_VENDORS_VARIABLE = "HWBENCH_OCL_ICD_VENDORS"
# PoCL's devices unless the user sets POCL_DEVICES: its default, multi-threaded one, and
# "basic", which runs each command in the thread that waits for it: a host
# synchronisation costs ~1 µs there, ~35 µs on "pthread" (waking its worker threads).
POCL_DEVICES_DEFAULT = "pthread basic"
POCL_BASIC_PREFIX = "basic-"  # PoCL names its devices "<driver>-<CPU name>"


def cache_dir() -> Path:
    """hwbench's per-user cache folder: ``$HWBENCH_CACHE_DIR``, else ``~/.cache/hwbench``."""
    env = os.environ.get("HWBENCH_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "hwbench"


def intel_cpu_library() -> Path | None:
    """``libintelocl.so`` of an installed ``intel-opencl-rt`` wheel, or None."""
    try:
        dist = importlib.metadata.distribution(INTEL_CPU_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == INTEL_CPU_LIBRARY:
            path = Path(str(dist.locate_file(file))).resolve()
            if path.is_file():
                return path
    return None


def _system_icds(environ: Mapping[str, str]) -> dict[str, str]:
    """The .icd files the loader would read without ``OCL_ICD_VENDORS`` (name -> text)."""
    folder = Path(environ.get("OPENCL_VENDOR_PATH") or SYSTEM_VENDORS)
    icds = {}
    try:
        for path in sorted(folder.glob("*.icd")):
            icds[path.name] = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        pass
    return icds


def wheel_vendor_folder(library: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The vendors folder that adds ``library`` (Intel's CPU runtime) to what the loader
    reads anyway, written under the cache; None where nothing is to be added: no library,
    the user's own ``OCL_ICD_VENDORS``, a system-wide install that registers it already,
    or an unwritable cache. PoCL's wheel needs no entry (it would be listed twice). A
    folder set by an hwbench parent process (a worker, the probe) is returned as it is."""
    inherited = environ.get(OWN_VENDORS_VARIABLE)
    if inherited and environ.get("OCL_ICD_VENDORS") == inherited:
        return Path(inherited)
    if library is None or environ.get("OCL_ICD_VENDORS"):
        return None
    icds = _system_icds(environ)
    if any(INTEL_CPU_LIBRARY.removesuffix(".so") in text for text in icds.values()):
        return None
    icds["hwbench-intel-cpu.icd"] = f"{library}\n"
    # One folder per content: venvs sharing a cache never rewrite each other's files.
    digest = hashlib.sha256(json.dumps(sorted(icds.items())).encode()).hexdigest()[:16]
    folder = cache_dir() / "opencl-vendors" / digest
    try:
        for name, text in icds.items():
            if not (folder / name).is_file():
                write_atomic(folder / name, lambda fh, text=text: fh.write(text))
    except (OSError, HwbenchError):
        return None
    return folder


@functools.cache
def register_wheel_icds() -> Path | None:
    """Point ``OCL_ICD_VENDORS`` at ``wheel_vendor_folder`` when the ``intel-opencl-rt``
    wheel is installed (once per process; child processes inherit the variable)."""
    folder = wheel_vendor_folder(intel_cpu_library(), os.environ)
    if folder is not None:
        os.environ["OCL_ICD_VENDORS"] = os.environ[OWN_VENDORS_VARIABLE] = str(folder)
    return folder


def intel_cpu_status() -> str:
    """"" when Intel's CPU runtime is among the devices; otherwise why not, and the fix."""
    if intel_cpu_library() is None:
        return f"the {INTEL_CPU_DIST} wheel is not installed; {INTEL_CPU_HINT}"
    try:
        entries = discover()
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        return f"OpenCL discovery failed: {exc}"
    if any(e.platform == INTEL_CPU_PLATFORM and e.kind == "CPU" for e in entries):
        return ""
    if os.environ.get("OCL_ICD_VENDORS") and register_wheel_icds() is None:
        return (f"{INTEL_CPU_DIST} is installed, but OCL_ICD_VENDORS is set and names no "
                f"Intel CPU runtime; add an .icd file naming {intel_cpu_library()}")
    # The wheel does not declare libimf/libsvml/libirng/libintlc, without which the
    # loader skips the library silently (OCL_ICD_DEBUG=7 shows the dlopen error).
    return (f"{INTEL_CPU_DIST} is installed but its library did not load (it needs "
            f"libimf.so from intel-cmplr-lib-rt); {INTEL_CPU_HINT}")


@functools.cache
def load() -> Any:
    """The pyopencl module. PoCL reads ``POCL_CACHE_DIR`` once, when it is first loaded:
    unless the user chose one, its compiled kernels go under hwbench's cache folder.
    Likewise ``POCL_DEVICES``: unless the user chose, PoCL's ``basic`` device (one thread,
    commands run in the calling thread) is listed after its default ``pthread`` one, as
    ``opencl:basic`` (``POCL_DEVICES_DEFAULT``). The ICD loader reads ``OCL_ICD_VENDORS``
    at the first platform query, so wheel runtimes are registered here, before any."""
    os.environ.setdefault("POCL_CACHE_DIR", str(cache_dir() / "pocl"))
    os.environ.setdefault("POCL_DEVICES", POCL_DEVICES_DEFAULT)
    register_wheel_icds()
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
    vendor: str = ""  # the platform's vendor ("The pocl project", "NVIDIA Corporation")

    @property
    def pocl_basic(self) -> bool:
        """PoCL's ``basic`` device: the CPU its ``pthread`` device is, on one thread;
        chosen by name (``opencl:basic``), never by ``--backend all``."""
        return self.name.startswith(POCL_BASIC_PREFIX) and "pocl" in self.vendor.lower()

    @property
    def label(self) -> str:
        return f"{self.name} [{self.kind}] on {self.platform} (driver {self.driver})"


# The device types a name may select by (``opencl:GPU``), as ``Entry.kind`` spells them.
DEVICE_TYPES = ("GPU", "CPU", "ACCELERATOR")


def _kind(cl: Any, device_type: int) -> str:
    for name in ("GPU", "CPU", "ACCELERATOR", "CUSTOM"):
        if device_type & getattr(cl.device_type, name, 0):
            return name
    return "OTHER"


@functools.cache
def discover() -> tuple[DeviceEntry, ...]:
    """Every device of every platform, numbered across platforms in ICD order, except
    that platforms hwbench registered itself (``register_wheel_icds``) come last."""
    cl = load()
    platforms = list(enumerate(cl.get_platforms()))
    if register_wheel_icds() is not None:
        platforms.sort(key=lambda item: item[1].name.strip() == INTEL_CPU_PLATFORM)
    entries = []
    for p_index, platform in platforms:
        try:
            devices = platform.get_devices()
        except cl.Error:  # a platform with no devices raises DEVICE_NOT_FOUND
            continue
        # PoCL lists "basic" first whatever POCL_DEVICES's order: it goes last, so that
        # opencl:N and the default device are what they were without it.
        pocl = "pocl" in platform.vendor.lower()
        order = sorted(enumerate(devices), key=lambda item: pocl and item[1].name.strip(
            ).startswith(POCL_BASIC_PREFIX))
        for d_index, dev in order:
            entries.append(DeviceEntry(len(entries), p_index, d_index, platform.name.strip(),
                                       dev.name.strip(), _kind(cl, dev.type),
                                       dev.driver_version.strip(), dev.version.strip(),
                                       platform.vendor.strip()))
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
    a platform's name or vendor, else of a device name (the first match): ``opencl:intel``
    and ``opencl:pocl`` pick a runtime on a machine that has both."""
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
    # Runtime names first: on an Intel CPU, PoCL's device is "pthread-Intel(R) Xeon...",
    # and opencl:intel must still mean Intel's runtime.
    for fields in (lambda e: (e.platform, e.vendor), lambda e: (e.name,)):
        for entry in entries:
            if any(needle in field.lower() for field in fields(entry)):
                return entry
    raise ArgumentError(
        f"argument 'backend': no OpenCL device matches {text!r}; devices: "
        + "; ".join(f"{e.index}: {e.label}" for e in entries))


def opencl_c_std(version_text: str) -> str | None:
    """The ``-cl-std=`` value for the newest OpenCL C a device compiles ("CL3.0", "CL2.0"),
    from its ``CL_DEVICE_OPENCL_C_VERSION`` ("OpenCL C 3.1 "), or None for 1.x (the
    default). Compilers build OpenCL C 1.2 unless told, and some (Intel's CPU runtime)
    declare an extension's built-ins, such as integer ``dot()``, only from 2.0 on."""
    parts = version_text.split()
    try:
        major = int(parts[2].split(".")[0]) if parts[:2] == ["OpenCL", "C"] else 0
    except (IndexError, ValueError):
        return None
    return "CL3.0" if major >= 3 else "CL2.0" if major == 2 else None


def host_cpu_flags() -> frozenset[str]:
    """The host CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def pocl_avx512(is_cpu: bool, version: str) -> bool:
    """Whether kernels may compile functions for AVX-512 (``target("avx512f")``): PoCL's
    CPU device on an x86-64 host that has it. PoCL 3.0 builds for the host CPU as LLVM 14
    names it (Zen 4: "znver3", without AVX-512), so float16 code is split in two."""
    return (is_cpu and "PoCL" in version and "x86_64" in version
            and "avx512f" in host_cpu_flags())


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
        self.opencl_c_std = opencl_c_std(self.device.opencl_c_version)
        self.avx512 = pocl_avx512(self.is_cpu, entry.version)
        self.recorder: Any = None  # a ``recording.Recorder`` while a run is recorded

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
