"""Discovery, device selection, math modes, error translation and event timing for CUDA.

Nothing here imports CuPy at module import: ``load_cupy`` does, when a backend is asked
for, so that ``hwbench list`` on a machine without CuPy or without a GPU says why instead
of failing. Every GPU error a kernel can raise (out of memory, launch failure, a cuBLAS or
cuDNN status, a kernel that fails to compile) goes through ``translate`` once and comes out
as an ``hwbench.errors`` exception that says what to do about it.

Status: written against CuPy 14's and the CUDA runtime's documented APIs; the pure parts
(math modes, device names, availability messages, error translation) are unit-tested
without a GPU, the rest has not yet run on one.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
from collections.abc import Callable, Iterator
from typing import Any

from hwbench.errors import (
    ArgumentError,
    BackendUnavailableError,
    HwbenchError,
    NativeLibraryError,
    UnsupportedError,
)

INSTALL_HINT = "pip install 'hwbench[cuda]'"

# Float math modes a caller may name (``math_mode=``); fp32 unless named, never silently.
# fp32: IEEE float32 FMAs (cuBLAS CUBLAS_COMPUTE_32F, cuDNN CUDNN_FMA_MATH: no TF32).
# tf32: float32 data, tensor cores with 10-bit mantissas (CUBLAS_COMPUTE_32F_FAST_TF32).
# fp16 / bf16: float32 data rounded to half / bfloat16 for the tensor cores, float32
# accumulation (CUBLAS_COMPUTE_32F_FAST_16F / _16BF; cuDNN on converted copies).
MATH_MODES = ("fp32", "tf32", "fp16", "bf16")


def check_math_mode(mode: Any) -> str:
    """``mode`` if it is one of ``MATH_MODES``, else ``ArgumentError`` naming 'math_mode'."""
    if not isinstance(mode, str) or mode not in MATH_MODES:
        raise ArgumentError(f"argument 'math_mode' must be one of "
                            f"{', '.join(map(repr, MATH_MODES))}, got {mode!r}")
    return mode


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """A string option of the backend (``int8_gemm=``, ``conv=``), checked by name."""
    if not isinstance(value, str) or value not in choices:
        raise ArgumentError(f"argument '{name}' must be one of "
                            f"{', '.join(map(repr, choices))}, got {value!r}")
    return value


# -- CuPy and the GPU ------------------------------------------------------------------
def load_cupy() -> Any:
    """Import CuPy (tests replace this function to simulate a machine without it)."""
    import cupy

    return cupy


def availability(loader: Callable[[], Any] | None = None) -> tuple[bool, str]:
    """``(True, "")`` or ``(False, why and what to do)``; never raises."""
    try:
        cupy = (loader or load_cupy)()
    except ImportError as exc:
        return False, f"cupy not installed ({INSTALL_HINT}): {exc}"
    except Exception as exc:  # noqa: BLE001 - a broken install must not break `list`
        return False, f"cupy failed to import ({type(exc).__name__}: {exc}); reinstall with " \
                      f"{INSTALL_HINT} for your CUDA major version"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # noqa: BLE001 - cudaErrorNoDevice, InsufficientDriver, ...
        return False, f"no CUDA driver/GPU: {type(exc).__name__}: {exc}"
    if count < 1:
        return False, "no CUDA driver/GPU: the CUDA runtime reports 0 devices"
    return True, ""


def select_device(device: str | None, count: int) -> int:
    """``None`` -> 0; ``"N"`` -> N, checked against the ``count`` GPUs present."""
    if device is None or device == "":
        return 0
    try:
        index = int(device)
    except ValueError:
        raise ArgumentError(f"argument 'backend': cuda devices are numbered, e.g. 'cuda:0'; "
                            f"got 'cuda:{device}'") from None
    if not 0 <= index < count:
        raise ArgumentError(f"argument 'backend': 'cuda:{device}' does not exist: this "
                            f"machine has {count} CUDA device(s) (cuda:0 .. cuda:{count - 1})")
    return index


def version_string(encoded: int) -> str:
    """CUDA's integer versions (12080, 13000) as "12.8", "13.0"."""
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def versions(cupy: Any) -> dict[str, str]:
    """CuPy, CUDA runtime and driver versions and the GPUs' names; never raises."""
    out: dict[str, str] = {}
    try:
        out["cupy"] = cupy.__version__
        out["cuda_runtime"] = version_string(cupy.cuda.runtime.runtimeGetVersion())
        out["cuda_driver"] = version_string(cupy.cuda.runtime.driverGetVersion())
        for index in range(cupy.cuda.runtime.getDeviceCount()):
            props = cupy.cuda.runtime.getDeviceProperties(index)
            name = props["name"]
            name = name.decode() if isinstance(name, bytes) else str(name)
            out[f"cuda:{index}"] = f"{name} (sm_{props['major']}{props['minor']})"
    except Exception:  # noqa: BLE001 - versions never raise
        pass
    return out


# -- errors ----------------------------------------------------------------------------
# Matched by class name along the MRO, so this table needs no CuPy import and its tests
# need no GPU. Each entry: (what happened, what to do).
_GPU_ERRORS: dict[str, tuple[type[HwbenchError], str]] = {
    "OutOfMemoryError": (NativeLibraryError,
                         "out of GPU memory; use a smaller batch or problem, or free other "
                         "device arrays (cupy.get_default_memory_pool().free_all_blocks())"),
    "CUDARuntimeError": (NativeLibraryError,
                         "CUDA runtime error; after a launch failure or an illegal address the "
                         "process's CUDA context is unusable: restart it, and locate the fault "
                         "with CUDA_LAUNCH_BLOCKING=1 or compute-sanitizer"),
    "CUDADriverError": (NativeLibraryError,
                        "CUDA driver error; check that the driver supports this CUDA version "
                        "(nvidia-smi) and restart the process"),
    "CUBLASError": (NativeLibraryError,
                    "cuBLAS error; CUBLAS_STATUS_ALLOC_FAILED means out of GPU memory, "
                    "NOT_SUPPORTED a shape or type cuBLAS rejects"),
    "CompileException": (NativeLibraryError,
                         "a CuPy kernel failed to compile with NVRTC; check that CuPy's CUDA "
                         "major version matches the driver's"),
}


def translate(exc: BaseException, what: str) -> HwbenchError | None:
    """The ``hwbench.errors`` exception for a GPU error raised during ``what``, or None
    when ``exc`` is not one (argument errors and the like pass through unchanged)."""
    if isinstance(exc, HwbenchError):
        return None
    for cls in type(exc).__mro__:
        entry = _GPU_ERRORS.get(cls.__name__)
        if entry is not None:
            kind, advice = entry
            return kind(f"cuda {what}: {type(exc).__name__}: {exc} -- {advice}")
    return None


@contextlib.contextmanager
def gpu_errors(what: str) -> Iterator[None]:
    """Run a block, turning GPU errors into ``hwbench.errors`` exceptions naming ``what``."""
    try:
        yield
    except Exception as exc:
        translated = translate(exc, what)
        if translated is None:
            raise
        raise translated from exc


# -- native libraries beside CuPy (cuDNN, cuBLASLt) ------------------------------------
def wheel_library_dirs() -> list[str]:
    """``lib`` folders of NVIDIA's pip wheels (``nvidia-cudnn-cu13`` puts libcudnn in
    ``nvidia/cudnn/lib``, CUDA 13's ``nvidia-cublas`` in ``nvidia/cu13/lib``), found
    without importing anything."""
    dirs = []
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        spec = None
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        for sub in ("cudnn/lib", "cu13/lib", "cublas/lib", "cu12/lib"):
            path = os.path.join(root, sub)
            if os.path.isdir(path):
                dirs.append(path)
    return dirs


def load_library(sonames: list[str], prefer_loaded: bool = True) -> tuple[Any, str]:
    """``(ctypes.CDLL, path)`` of the first of ``sonames`` that loads, or ``(None, why)``.

    With ``prefer_loaded``, a bare soname is tried first: if the process already has that
    library (libcublasLt under CuPy's libcublas), dlopen returns the same copy. Then the
    wheels' folders, then the system's loader path.
    """
    tried = []
    candidates: list[str] = []
    if prefer_loaded:
        candidates += list(sonames)
    for folder in wheel_library_dirs():
        candidates += [os.path.join(folder, name) for name in sonames]
    if not prefer_loaded:
        candidates += list(sonames)
    for path in candidates:
        try:
            return ctypes.CDLL(path), path
        except OSError as exc:
            tried.append(f"{path}: {exc}")
    return None, "; ".join(tried[-3:]) or f"none of {sonames} found"


# -- timing ----------------------------------------------------------------------------
def event_seconds(cupy: Any, fn: Callable[[], Any], warmup: int = 3,
                  repeats: int = 20) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` between two CUDA events on the
    current stream, after ``warmup`` calls: the GPU's time, no host overhead counted.

    The harness's own loop (``harness.timing.measure``) times with the host clock around
    ``backend.synchronize()``; over many calls the two agree, and this one is what the
    GPU benchmark script uses to compare with CuPy and PyTorch launch for launch.
    """
    if warmup < 0 or repeats < 1:
        raise ArgumentError(f"event_seconds: need warmup >= 0 and repeats >= 1, got "
                            f"{warmup}, {repeats}")
    for _ in range(warmup):
        fn()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    seconds = []
    for _ in range(repeats):
        start.record()
        fn()
        end.record()
        end.synchronize()
        seconds.append(cupy.cuda.get_elapsed_time(start, end) / 1e3)
    return seconds


def unavailable(why: str) -> BackendUnavailableError:
    return BackendUnavailableError(f"backend 'cuda' is unavailable: {why}")


def unsupported(what: str) -> UnsupportedError:
    return UnsupportedError(f"cuda: {what}")

