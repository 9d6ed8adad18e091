"""The checks every backend's ``asarray``/``to_numpy``/``empty`` run before their own code,
who made an array (to refuse another backend's or library's by name), and the NaN screen.

``Backend.__init_subclass__`` wraps a backend's own methods with ``guarded``, so that no
backend repeats these checks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from hwbench.backends import memory
from hwbench.errors import ArgumentError, DTypeError

if TYPE_CHECKING:  # for annotations only: base imports this module
    from hwbench.backends.base import Backend

# Backend name -> the module its device arrays' types come from (``Backend._owns``), and,
# read the other way, who made an array another backend was given (``array_maker``).
DEVICE_ARRAY_MODULES: dict[str, str] = {
    "cpu": "hwbench.backends.cpu",  # BlockedArray, ChannelsLastArray (cpu.layouts)
    "opencl": "pyopencl",
    "cuda": "cupy",
}
# Libraries whose arrays users may pass by mistake, named in the message.
_LIBRARY_MODULES = {"torch": "PyTorch", "jax": "JAX", "tensorflow": "TensorFlow",
                    "dask": "Dask", "xarray": "xarray", "pandas": "pandas"}
# Above this many elements the NaN screen uses min/max (no temporary) over isfinite.
LARGE_SCREEN = 1 << 22


def array_maker(x: Any) -> str:
    """Which backend (or library) made the array ``x``, from its type's module."""
    module = type(x).__module__ or ""
    for backend, prefix in DEVICE_ARRAY_MODULES.items():
        if module.startswith(prefix):
            return backend
    root = module.split(".")[0]
    return _LIBRARY_MODULES.get(root, f"module {root!r}" if root else "an unknown library")


def all_finite(host: np.ndarray) -> bool:
    """No NaN or inf in a host array: the NaN screen every backend runs."""
    host = np.asarray(host)
    if host.size > LARGE_SCREEN:  # min/max allocate nothing (NaN propagates through)
        return bool(np.isfinite(host.min()) and np.isfinite(host.max()))
    return bool(np.isfinite(host).all())


def guarded(name: str, method: Callable) -> Callable:
    """``method`` (a backend's asarray, to_numpy or empty) behind the shared checks."""
    check = {"asarray": _check_asarray, "to_numpy": _check_to_numpy, "empty": _check_empty}[name]

    @functools.wraps(method)
    def checked(self: Backend, *args: Any, **kwargs: Any) -> Any:
        args, kwargs, done = check(self, args, kwargs)
        return done[0] if done else method(self, *args, **kwargs)

    checked._guarded = True  # type: ignore[attr-defined]
    return checked


def numeric_host(op: str, name: str, x: Any) -> np.ndarray:
    """``x`` as a NumPy array of numbers, or an ``hwbench.errors`` exception naming it."""
    try:
        host = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists, objects NumPy refuses
        raise ArgumentError(f"{op}: argument '{name}' is not an array of numbers: {exc}") \
            from exc
    if host.dtype.kind not in "biufc":
        raise DTypeError(f"{op}: argument '{name}' must hold numbers (bool, int, float), got "
                         f"dtype {host.dtype} from {type(x).__name__}")
    return host


def _check_asarray(be: Backend, args: tuple, kwargs: dict) -> tuple[tuple, dict, tuple]:
    x = args[0] if args else kwargs.get("x")
    if not args and "x" not in kwargs:
        raise ArgumentError("asarray: argument 'x' is missing")
    if isinstance(x, (np.ndarray, np.generic)):
        host = x
    elif hasattr(x, "shape") and hasattr(x, "dtype") and be._owns(x):
        return args, kwargs, ()
    else:
        be._check_foreign("asarray", x=x)
        host = numeric_host("asarray", "x", x)
        args = (host,) + tuple(args[1:]) if args else args
        if not args:
            kwargs = {**kwargs, "x": host}
    if host.dtype.kind not in "biufc":
        raise DTypeError(f"asarray: argument 'x' must hold numbers (bool, int, float), got "
                         f"dtype {host.dtype}")
    nbytes = host.size * host.dtype.itemsize
    if nbytes >= memory.SMALL_BYTES:  # (the message is only worth building then)
        be.require_bytes(nbytes, f"asarray of shape {tuple(host.shape)} {host.dtype} on "
                         f"{be.full_name}", functools.partial(_elements_fit, host.dtype.itemsize))
    return args, kwargs, ()


def _elements_fit(itemsize: int, free: int) -> str:
    return f"arrays of at most {free // itemsize:,} elements of {itemsize} bytes fit"


def _check_to_numpy(be: Backend, args: tuple, kwargs: dict) -> tuple[tuple, dict, tuple]:
    x = args[0] if args else kwargs.get("x")
    if isinstance(x, np.generic):  # a NumPy scalar is a 0-d host array
        return args, kwargs, (np.asarray(x),)
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biufc":
            raise DTypeError(f"to_numpy: argument 'x' must hold numbers, got dtype {x.dtype}")
        return args, kwargs, ()
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        if be._owns(x):
            return args, kwargs, ()
        be._check_foreign("to_numpy", x=x)
    host = numeric_host("to_numpy", "x", x)  # nested lists of numbers, as NumPy takes
    return args, kwargs, (host,)


def _check_empty(be: Backend, args: tuple, kwargs: dict) -> tuple[tuple, dict, tuple]:
    shape = args[0] if args else kwargs.get("shape")
    dtype = args[1] if len(args) > 1 else kwargs.get("dtype", np.float32)
    dims = (shape,) if isinstance(shape, (int, np.integer)) else shape
    if (not isinstance(dims, (tuple, list)) or isinstance(shape, bool)
            or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                       for d in dims)):
        raise ArgumentError(f"empty: argument 'shape' must be an int or a tuple of ints, got "
                            f"{shape!r}")
    if any(int(d) < 0 for d in dims):
        raise ArgumentError(f"empty: argument 'shape' {tuple(dims)} has a negative dimension")
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise DTypeError(f"empty: argument 'dtype' {dtype!r} is not a dtype: {exc}") from exc
    if dt.kind not in "biuf":
        raise DTypeError(f"empty: argument 'dtype' must be a numeric dtype, got {dt}")
    nbytes = memory.nbytes_of(tuple(dims), dt.itemsize)
    if nbytes >= memory.SMALL_BYTES:
        be.require_bytes(nbytes, f"empty of shape {tuple(int(d) for d in dims)} {dt} on "
                         f"{be.full_name}", functools.partial(_elements_fit, dt.itemsize))
    return args, kwargs, ()
