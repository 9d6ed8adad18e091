"""No cached result may go stale: changing an input between two calls changes the answer.

Backends keep work done on an input across calls (cpu: filters reordered for oneDNN, int8
filters, packed int8 weights, the NaN screen's verdict; systolic: quantized weights).
That is only sound for an input that can never change. For every backend mode and every
kernel argument such a cache reads, each test calls the kernel, changes the argument by
one route NumPy allows (a plain write, re-enabling writes on any array in its ``.base``
chain, ``as_strided(writeable=True)``, a read-only view or ``broadcast_to`` view of a
base that changes), calls again, and compares with the float64 reference of what the
argument holds *now*. A route NumPy refuses leaves the contents as they were, and the
answer must then be the old one.

Also here: the three defects this guard generalizes (issue 13, "Silent wrong answers").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from backend_modes import MODES, backend_for, float32_requant, quantizes_float_math

from hwbench.backends import get_backend
from hwbench.backends.frozen import can_be_made_writable
from hwbench.errors import ArgumentError
from hwbench.kernels import reference as ref
from hwbench.pytest_plugin import availability

F32 = np.float32


# -- how an argument can change between two calls ---------------------------------------------
@dataclass
class Route:
    """Makes an argument from host values, and changes it to ``new`` (or tries to)."""

    name: str
    make: Callable[[Any, np.ndarray], Any]          # (backend, values) -> argument
    change: Callable[[Any, Any, np.ndarray], None]  # (backend, argument, new values)
    rows_alike: bool = False                        # values must repeat along axis 0


def _write_through_any_base(_be: Any, arg: Any, new: np.ndarray) -> None:
    """Try every way NumPy offers to get a writable array over ``arg``'s memory."""
    if not isinstance(arg, np.ndarray):
        return  # a device array (opencl, cuda): no host memory to write
    candidates = []
    array: Any = arg
    while isinstance(array, np.ndarray):
        candidates.append(array)
        array = array.base
    candidates.append(np.lib.stride_tricks.as_strided(arg, writeable=True))
    candidates.append(np.asarray(memoryview(arg)) if arg.ndim else np.asarray(arg))
    for candidate in candidates:
        try:
            candidate.flags.writeable = True
        except ValueError:
            continue
        view = candidate.reshape(-1).view(np.uint8)[:arg.nbytes] if candidate is not arg \
            else None
        if view is None:
            arg[...] = new
        else:
            view[...] = np.ascontiguousarray(new, arg.dtype).reshape(-1).view(np.uint8)
        return


def _host_writable(be: Any, values: np.ndarray) -> np.ndarray:
    return values.copy()


def _set(_be: Any, arg: np.ndarray, new: np.ndarray) -> None:
    arg[...] = new


def _read_only_owner(_be: Any, values: np.ndarray) -> np.ndarray:
    out = values.copy()
    out.flags.writeable = False
    return out


def _read_only_view(_be: Any, values: np.ndarray) -> np.ndarray:
    view = values.copy().view()
    view.flags.writeable = False
    return view


def _change_base(_be: Any, arg: np.ndarray, new: np.ndarray) -> None:
    arg.base[...] = new


def _broadcast_row(_be: Any, values: np.ndarray) -> np.ndarray:
    return np.broadcast_to(values[0].copy(), values.shape)


def _change_row(_be: Any, arg: np.ndarray, new: np.ndarray) -> None:
    arg.base[...] = new[0]


def _uploaded(be: Any, values: np.ndarray) -> Any:
    return be.asarray(values)


ROUTES = [
    Route("write", _host_writable, _set),
    Route("read-only-then-writable", _read_only_owner,
          lambda be, arg, new: (arg.setflags(write=True), _set(be, arg, new))),
    Route("read-only-view-of-changing-base", _read_only_view, _change_base),
    Route("broadcast-view-of-changing-row", _broadcast_row, _change_row, rows_alike=True),
    Route("asarray-then-any-base-writable", _uploaded, _write_through_any_base),
]


def _contents(be: Any, arg: Any) -> np.ndarray:
    """What ``arg`` holds now, on the host."""
    return np.array(arg) if isinstance(arg, np.ndarray) else np.array(be.to_numpy(arg))


# -- kernels that cache something per argument ------------------------------------------------
@dataclass
class Case:
    """A kernel call with one argument (``vary``) passed through a route."""

    name: str
    inputs: Callable[[np.random.Generator], dict[str, np.ndarray]]
    call: Callable[[Any, dict[str, Any]], Any]
    want: Callable[[dict[str, np.ndarray]], np.ndarray]
    vary: str
    kind: str = "float"  # "float", "int32" (exact), "int8" (exact; 1 LSB for float32-requant)
    k: int = 1           # accumulation length (float tolerance)


def _floats(rng, *shape):
    return rng.standard_normal(shape).astype(F32)


def _u8(rng, *shape):
    return rng.integers(0, 256, shape, dtype=np.uint8)


def _i8(rng, *shape):
    return rng.integers(-127, 128, shape, dtype=np.int8)


QPARAMS = {"a_scale": F32(0.02), "a_zero_point": np.uint8(128), "b_scale": F32(0.01),
           "b_zero_point": np.int8(0), "y_scale": F32(0.5), "y_zero_point": np.uint8(100)}


def _qgemm_call(be, a):
    q = QPARAMS
    return be.qgemm(a["a"], q["a_scale"], q["a_zero_point"], a["b"], q["b_scale"],
                    q["b_zero_point"], q["y_scale"], q["y_zero_point"])


def _qgemm_want(a):
    q = QPARAMS
    return ref.qgemm(a["a"], q["a_scale"], q["a_zero_point"], a["b"], q["b_scale"],
                     q["b_zero_point"], q["y_scale"], q["y_zero_point"])


def _qconv_call(be, a):
    q = QPARAMS
    return be.qconv2d(a["x"], q["a_scale"], q["a_zero_point"], a["w"], q["b_scale"],
                      q["b_zero_point"], q["y_scale"], q["y_zero_point"], padding=1)


def _qconv_want(a):
    q = QPARAMS
    return ref.qconv2d(a["x"], q["a_scale"], q["a_zero_point"], a["w"], q["b_scale"],
                       q["b_zero_point"], q["y_scale"], q["y_zero_point"], padding=1)


def _gemm_inputs(rng):
    return {"a": _floats(rng, 5, 7), "b": _floats(rng, 7, 6)}


def _conv_inputs(rng):  # 16 channels: the cpu backend's blocked (packed-filter) path
    return {"x": _floats(rng, 1, 16, 6, 6), "w": 0.1 * _floats(rng, 16, 16, 3, 3),
            "r": _floats(rng, 1, 16, 6, 6)}


def _int8_gemm_inputs(rng):
    return {"a": _u8(rng, 5, 40), "b": _i8(rng, 40, 6)}


def _int8_conv_inputs(rng):
    return {"x": _u8(rng, 1, 16, 5, 5), "w": _i8(rng, 8, 16, 3, 3)}


def _conv(be, a, **kw):
    return be.conv2d(a["x"], a["w"], padding=1, **kw)


CASES = [
    Case("gemm/b", _gemm_inputs, lambda be, a: be.gemm(a["a"], a["b"]),
         lambda a: ref.gemm(a["a"], a["b"]), "b", k=7),
    Case("gemm/a", _gemm_inputs, lambda be, a: be.gemm(a["a"], a["b"]),
         lambda a: ref.gemm(a["a"], a["b"]), "a", k=7),
    Case("conv2d/w", _conv_inputs, _conv, lambda a: ref.conv2d(a["x"], a["w"], padding=1),
         "w", k=144),
    Case("conv2d/x", _conv_inputs, _conv, lambda a: ref.conv2d(a["x"], a["w"], padding=1),
         "x", k=144),
    Case("conv2d+residual+relu/w", _conv_inputs,
         lambda be, a: _conv(be, a, residual=a["r"], activation="relu"),
         lambda a: ref.conv2d(a["x"], a["w"], padding=1, residual=a["r"], activation="relu"),
         "w", k=144),
    Case("conv2d+residual/residual", _conv_inputs,
         lambda be, a: _conv(be, a, residual=a["r"]),
         lambda a: ref.conv2d(a["x"], a["w"], padding=1, residual=a["r"]), "r", k=144),
    Case("gemm_int8/b", _int8_gemm_inputs, lambda be, a: be.gemm_int8(a["a"], a["b"], 128, 0),
         lambda a: ref.gemm_int8(a["a"], a["b"], 128, 0), "b", kind="int32"),
    Case("qgemm/b", _int8_gemm_inputs, _qgemm_call, _qgemm_want, "b", kind="int8"),
    Case("conv2d_int8/w", _int8_conv_inputs,
         lambda be, a: be.conv2d_int8(a["x"], a["w"], 128, 0, padding=1),
         lambda a: ref.conv2d_int8(a["x"], a["w"], 128, 0, padding=1), "w", kind="int32"),
    Case("qconv2d/w", _int8_conv_inputs, _qconv_call, _qconv_want, "w", kind="int8"),
]


def _new_values(rng: np.random.Generator, old: np.ndarray, rows_alike: bool) -> np.ndarray:
    """Different values of the same shape and dtype (every row alike if asked)."""
    if old.dtype == F32:
        new = (-2.0 * old - 1.0).astype(F32)
    else:
        info = np.iinfo(old.dtype)
        new = rng.integers(info.min, info.max, old.shape, endpoint=True).astype(old.dtype)
        if np.array_equal(new, old):
            new = (old ^ old.dtype.type(1)).astype(old.dtype)
    if rows_alike:
        new = np.broadcast_to(new[0], new.shape).copy()
    return new


def _assert_matches(be: Any, case: Case, got: Any, values: dict[str, np.ndarray]) -> None:
    want = case.want(values)
    got = np.asarray(be.to_numpy(got))
    if case.kind == "int32":
        np.testing.assert_array_equal(got.astype(np.int64), want)
    elif case.kind == "int8":
        lsb = 1 if float32_requant(be) else 0
        diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
        assert diff.max(initial=0) <= lsb, f"{case.name}: off by {diff.max()} LSB"
    else:
        scale = max(float(np.abs(want).max()), 1e-30)
        err = float(np.abs(got.astype(np.float64) - want).max()) / scale
        tol = 5e-2 if quantizes_float_math(be) else 2e-6 * max(1.0, np.sqrt(case.k))
        assert err <= tol, f"{case.name}: relative error {err:.2e} (tolerance {tol:.0e})"


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("mode", list(MODES))
def test_changing_an_argument_between_calls_changes_the_result(mode, case, route):
    be = backend_for(mode)
    rng = np.random.default_rng(13)
    values = case.inputs(rng)
    if route.rows_alike:
        values[case.vary] = np.broadcast_to(values[case.vary][0], values[case.vary].shape).copy()
    args: dict[str, Any] = dict(values)
    args[case.vary] = route.make(be, values[case.vary])
    for _ in range(2):  # the second call is the one a cache serves
        _assert_matches(be, case, case.call(be, args), values)
    new = _new_values(rng, values[case.vary], route.rows_alike)
    route.change(be, args[case.vary], new)
    now = _contents(be, args[case.vary])
    assert np.array_equal(now, new) or np.array_equal(now, values[case.vary]), \
        "the route left the argument half changed"
    values[case.vary] = now
    _assert_matches(be, case, case.call(be, args), values)


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
@pytest.mark.parametrize("mode", [m for m in MODES if m.endswith("/direct")])
def test_nan_written_between_calls_is_still_refused(mode, route):
    """The NaN screen (once per frozen array on cpu) must see a NaN put in later."""
    be = backend_for(mode)
    values = _gemm_inputs(np.random.default_rng(5))
    a = route.make(be, np.broadcast_to(values["a"][0], values["a"].shape).copy())
    be.gemm(a, values["b"])
    be.gemm(a, values["b"])
    poisoned = np.full(values["a"].shape, np.nan, F32)
    route.change(be, a, poisoned)
    if np.isnan(_contents(be, a)).any():
        with pytest.raises(ArgumentError, match="'a'"):
            be.gemm(a, values["b"])
    else:  # the route was refused: the array is as it was, and so is the answer
        be.gemm(a, values["b"])


# -- the defects --------------------------------------------------------------------------------
def _cpu_or_skip(**options: Any) -> Any:
    ok, why = availability("cpu")
    if not ok:
        pytest.skip(f"backend cpu unavailable: {why}")
    return get_backend("cpu", **options)


@pytest.mark.parametrize("name", ["cpu", "systolic"])
def test_uploaded_arrays_cannot_be_made_writable_through_any_base(name):
    """Defect 3 (issue 13): cpu's frozen buffer could be made writable through its root,
    so cached filters and the once-only NaN screen went stale."""
    be = _cpu_or_skip() if name == "cpu" else get_backend(name)
    for values in (np.ones((64, 64), F32), np.ones((300, 300), F32), np.int8(3),
                   np.zeros((0, 4), np.uint8)):
        x = be.asarray(values)
        assert not can_be_made_writable(x), f"{name}: asarray of {values.shape} is writable"
        array: Any = x
        while isinstance(array, np.ndarray):
            with pytest.raises(ValueError):
                array.flags.writeable = True
            array = array.base
        assert not np.lib.stride_tricks.as_strided(x, writeable=True).flags.writeable


def test_cpu_uploaded_arrays_stay_aligned_and_fast_path_reads_them():
    """Defect 3's fix keeps asarray's 64-byte alignment (of arrays past 64 KiB, as before),
    and the blocked conv reads it."""
    be = _cpu_or_skip(keep_blocked=True, check_finite=False)
    rng = np.random.default_rng(0)
    x, w = _floats(rng, 1, 32, 23, 23), 0.1 * _floats(rng, 64, 32, 3, 3)
    dx, dw = be.asarray(x), be.asarray(w)
    assert dx.ctypes.data % 64 == 0 and dw.ctypes.data % 64 == 0
    got = be.to_numpy(be.conv2d(dx, dw, padding=1))
    want = ref.conv2d(x, w, padding=1)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    assert be.frozen.cached(dw), "the conv's packed filters were not cached"


def test_systolic_gemm_sees_a_changed_base_of_a_read_only_view():
    """Defect 2 (issue 13): systolic cached quantized weights by id() of any read-only
    array, so a broadcast_to view whose row changed gave the old answer."""
    be = get_backend("systolic")
    a = np.random.default_rng(0).standard_normal((3, 8)).astype(F32)
    row = np.arange(4, dtype=F32)
    b = np.broadcast_to(row, (8, 4))
    be.gemm(a, b)
    row[:] = -10.0
    want = ref.gemm(a, b)
    got = be.to_numpy(be.gemm(a, b))
    assert np.abs(got - want).max() <= 5e-2 * np.abs(want).max()
