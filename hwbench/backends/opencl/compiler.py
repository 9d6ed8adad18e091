"""OpenCL programs: source -> built program, cached, probed for compiler crashes.

tinygrad's *Compiler* and *Program* roles. A program is one ``.cl`` file of
``hwbench/kernels/opencl`` plus its ``-D`` defines, and declares up front the
work-group size each of its kernels runs with: PoCL compiles a kernel per work-group
size at its first launch, so a fixed size per kernel means one compile, and lets the
probe (``probe.py``) compile exactly what will run, in a child process, before this
process touches it. A probed program is remembered in memory and by an empty marker
file under ``<cache>/opencl-probed/`` keyed by device, driver, source, options and
work-group sizes, so each program is probed once per machine and driver.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.backends.opencl.runtime import Device, cache_dir, native_error
from hwbench.errors import ArgumentError, NativeLibraryError, UnsupportedError

PROBE_SCRIPT = Path(__file__).with_name("probe.py")
PROBE_TIMEOUT_S = 300
DOT_EXTENSION = "cl_khr_integer_dot_product"
LOG_TAIL = 4000  # characters of a build log or a crash's stderr kept in the error


class BuildError(NativeLibraryError):
    """The device compiler rejected a program, or crashed compiling it; ``log`` has the
    compiler's output."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


@functools.cache
def kernel_source(name: str) -> str:
    """The text of ``hwbench/kernels/opencl/<name>.cl``."""
    try:
        return (resources.files("hwbench.kernels") / "opencl" / f"{name}.cl").read_text(
            encoding="utf-8")
    except FileNotFoundError as exc:
        raise ArgumentError(f"opencl: no kernel source {name!r}.cl") from exc


def probing_enabled() -> bool:
    """``HWBENCH_OPENCL_PROBE=0`` turns the crash probe off (faster, unsafe)."""
    return os.environ.get("HWBENCH_OPENCL_PROBE", "1") != "0"


Launches = Mapping[str, tuple[int, ...]]
MAX_GRIDS = 4096  # settled launch grids a program keeps; past it the table starts afresh


class Program:
    """A built program; launches its kernels at their declared work-group sizes."""

    def __init__(self, device: Device, cl_program: Any, launches: Launches, key: str) -> None:
        self.device = device
        self.key = key
        self.local_sizes = dict(launches)
        self._program = cl_program
        self._kernels: dict[str, Any] = {}
        # (kernel, padded global size, local size) per (name, *global size) launched: a
        # replayed plan launches the same few, and working them out cost ~2 us a launch.
        self._grids: dict[tuple[Any, ...], tuple[Any, tuple[int, ...], tuple[int, ...]]] = {}

    def kernel(self, name: str) -> Any:
        """The kernel object, created once (each creation costs a driver call)."""
        kernel = self._kernels.get(name)
        if kernel is None:
            if name not in self.local_sizes:
                raise ArgumentError(f"opencl: kernel {name!r} is not declared by its program")
            kernel = self.device.cl.Kernel(self._program, name)
            kernel.set_scalar_arg_dtypes(scalar_arg_dtypes(self.device.cl, kernel))
            self._kernels[name] = kernel
        return kernel

    def launch(self, name: str, global_size: Sequence[int], *args: Any,
               wait_for: Sequence[Any] | None = None) -> Any:
        """Enqueue ``name`` over ``global_size`` (rounded up to whole work-groups; the
        kernels check their bounds). Returns the event."""
        key = (name, *global_size)
        settled = self._grids.get(key)
        if settled is None:
            kernel = self.kernel(name)  # (an undeclared name raises)
            local = self.local_sizes[name]
            padded = tuple(-(-int(g) // lsz) * lsz for g, lsz in zip(global_size, local,
                                                                       strict=True))
            if len(self._grids) >= MAX_GRIDS:
                self._grids.clear()
            settled = self._grids[key] = (kernel, padded, local)
        kernel, padded, local = settled
        cl = self.device.cl
        if self.device.recorder is not None:  # a run being recorded (``recording``)
            self.device.recorder.kernel(self, name, padded, local, args)
        try:
            kernel.set_args(*args)
            return cl.enqueue_nd_range_kernel(self.device.queue, kernel, padded, local,
                                              wait_for=wait_for)
        except cl.Error as exc:
            raise launch_error(name, padded, local, exc) from exc


SCALAR_DTYPES = {"char": np.int8, "uchar": np.uint8, "short": np.int16, "ushort": np.uint16,
                 "int": np.int32, "uint": np.uint32, "long": np.int64, "ulong": np.uint64,
                 "float": np.float32, "double": np.float64}


def scalar_arg_dtypes(cl: Any, kernel: Any) -> list[Any]:
    """Per argument, None (a buffer) or the NumPy dtype of a by-value scalar, read from
    the argument metadata (-cl-kernel-arg-info): pyopencl then packs the arguments in
    one generated call, 5-10x faster than converting each (measured on PoCL)."""
    dtypes = []
    for i in range(kernel.num_args):
        if kernel.get_arg_info(i, cl.kernel_arg_info.ADDRESS_QUALIFIER) != \
                cl.kernel_arg_address_qualifier.PRIVATE:
            dtypes.append(None)
            continue
        type_name = kernel.get_arg_info(i, cl.kernel_arg_info.TYPE_NAME).strip()
        if type_name not in SCALAR_DTYPES:
            raise ArgumentError(f"opencl: kernel argument {i} has type {type_name!r}; "
                                f"hwbench kernels take buffers and {sorted(SCALAR_DTYPES)}")
        dtypes.append(SCALAR_DTYPES[type_name])
    return dtypes


def launch_error(name: str, global_size: tuple[int, ...], local: tuple[int, ...],
                 exc: Exception) -> NativeLibraryError:
    text = str(exc)
    hint = ""
    if "OUT_OF_RESOURCES" in text or "MEM_OBJECT_ALLOCATION" in text:
        hint = " (the device ran out of resources: try a smaller problem or work-group)"
    elif "WORK_GROUP_SIZE" in text or "WORK_ITEM_SIZE" in text:
        hint = " (the device refuses this work-group size: retune with `hwbench tune`)"
    return native_error(f"launching kernel {name!r} (global {global_size}, local {local})"
                        f"{hint}", exc)


class Compiler:
    """Builds programs for one device, caching them in memory by source and options."""

    def __init__(self, device: Device, probe: bool | None = None) -> None:
        self.device = device
        self.probe = probing_enabled() if probe is None else probe
        self._programs: dict[str, Program] = {}
        self._by_args: dict[tuple, Program] = {}
        self.builds = 0   # programs built in this process (the cache's misses)
        self.probes = 0   # child processes run

    def program(self, name: str, defines: Mapping[str, Any], launches: Launches,
                source: str | None = None, flags: Sequence[str] = ()) -> Program:
        """Program ``name`` (a kernel file, or any ``source`` given) built with ``-D``
        ``defines`` and compiler ``flags``; ``launches`` maps each kernel to its
        work-group size."""
        args_key = (name, tuple(sorted(defines.items())), tuple(sorted(launches.items())),
                    tuple(flags), source)
        program = self._by_args.get(args_key)
        if program is not None:  # the per-call fast path: no hashing, no file reads
            return program
        text = kernel_source(name) if source is None else source
        # Argument metadata lets the probe make dummy arguments; the process's own build
        # uses the same options, so PoCL serves it from the probe's on-disk cache.
        options = [f"-D{k}={v}" for k, v in sorted(defines.items())] + list(flags) + [
            "-cl-kernel-arg-info"]
        if (DOT_EXTENSION in text and self.device.opencl_c_std
                and not any(f.startswith("-cl-std") for f in flags)):
            # OpenCL C 1.2 (the default) may not declare the extension's dot(): Intel's
            # CPU compiler says "no matching function for call to 'dot'" without this.
            options.insert(0, f"-cl-std={self.device.opencl_c_std}")
        launch_list = {k: tuple(int(x) for x in v) for k, v in sorted(launches.items())}
        for kernel, local in launch_list.items():
            if math.prod(local) > self.device.max_work_group_size:
                raise UnsupportedError(
                    f"opencl: {name}.cl kernel {kernel!r} needs work-groups of {local} "
                    f"({math.prod(local)} work-items); {self.device.entry.name} allows "
                    f"{self.device.max_work_group_size}")
        key = hashlib.sha256(json.dumps(
            [self.device.cache_key, text, options, sorted(launch_list.items())]).encode()
        ).hexdigest()
        program = self._programs.get(key)
        if program is None:
            if self.probe:
                self._probe(name, key, text, options, launch_list)
            program = Program(self.device, self._build(name, text, options), launch_list, key)
            self._programs[key] = program
        self._by_args[args_key] = program
        return program

    @property
    def cached_programs(self) -> int:
        return len(self._programs)

    def _build(self, name: str, text: str, options: list[str]) -> Any:
        cl = self.device.cl
        self.builds += 1
        try:
            # A successful build's log is no error: Intel's CPU runtime writes one for every
            # program ("Compilation started ... was successfully vectorized"), which
            # pyopencl would turn into a warning per build. Failures keep their log below.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", cl.CompilerWarning)
                return cl.Program(self.device.context, text).build(options=options,
                                                                   cache_dir=False)
        except cl.Error as exc:
            log = str(exc)
            raise BuildError(f"opencl: building {name}.cl {' '.join(options)} failed on "
                             f"{self.device.entry.name}:\n{log[-LOG_TAIL:]}", log) from exc

    def _probe(self, name: str, key: str, text: str, options: list[str],
               launches: dict[str, tuple[int, ...]]) -> None:
        """Build and run the program in a child process first (see ``probe.py``)."""
        marker = cache_dir() / "opencl-probed" / key
        if marker.exists():
            return
        entry = self.device.entry
        request = {"platform": entry.platform_index, "device": entry.device_index,
                   "name": entry.name, "source": text, "options": options,
                   "launches": {k: [list(v)] for k, v in launches.items()}}
        self.probes += 1
        try:
            proc = subprocess.run([sys.executable, "-P", str(PROBE_SCRIPT)],
                                  input=json.dumps(request), capture_output=True, text=True,
                                  timeout=PROBE_TIMEOUT_S, env=os.environ.copy())
        except subprocess.TimeoutExpired as exc:
            raise BuildError(f"opencl: compiling {name}.cl took over {PROBE_TIMEOUT_S} s "
                             f"on {entry.name}", "") from exc
        if proc.returncode != 0:
            log = (proc.stderr or "") + (proc.stdout or "")
            how = ("failed to build" if proc.returncode == 4 else
                   f"crashed the device compiler (exit status {proc.returncode})")
            raise BuildError(f"opencl: {name}.cl {' '.join(options)} {how} on {entry.name}; "
                             f"the program was not loaded into this process:\n"
                             f"{log[-LOG_TAIL:]}", log)
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError:
            pass  # an unwritable cache only costs a probe next time
