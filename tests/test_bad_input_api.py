"""The bad-input corpus of the Python API, generated: backends × ops × argument × bad value.

Each kernel is listed once with a good call and the *kind* of each argument; each kind has
its list of bad values (wrong types, shapes, sizes, dtypes, NaN/inf, 0-d, foreign arrays
from another backend, sizes no machine holds). Every (backend, op, argument, bad value)
must end in an ``hwbench.errors`` exception whose message names the argument (sizes that
cannot fit: an ``OutOfMemoryError`` giving the bytes needed and free), never any other
exception. The API outside the kernels (``get_backend``, ``load_model``, ``Session``,
``Session.run``, ``quantize``, ``datasets``) gets the same treatment, and valid edge
inputs (0-d arrays, NumPy scalars, non-contiguous views) must give the right answer on
every backend. ``test_corpus_size`` prints how many cases there are.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from test_bad_input import names_argument

import hwbench
from hwbench.backends import get_backend
from hwbench.errors import ForeignArrayError, HwbenchError, OutOfMemoryError
from hwbench.pytest_plugin import availability

NAN, INF = float("nan"), float("inf")
HUGE = 1 << 40  # elements along one axis: no machine holds a float32 array this long


def f32(*shape: int) -> np.ndarray:
    return np.full(shape, 0.5, np.float32)


def u8(*shape: int) -> np.ndarray:
    return np.full(shape, 7, np.uint8)


def s8(*shape: int) -> np.ndarray:
    return np.full(shape, -3, np.int8)


def i32(*shape: int) -> np.ndarray:
    return np.full(shape, 5, np.int32)


def huge(*shape: int) -> np.ndarray:
    """A read-only broadcast view of ``shape``: no memory, however large it claims to be."""
    return np.broadcast_to(np.float32(0.5), shape)


class FakeArray:
    """Looks like an array (shape, dtype) but was made by no backend and is no ndarray."""

    def __init__(self, shape: tuple[int, ...], dtype: Any = np.float32) -> None:
        self.shape, self.dtype = shape, dtype


def blocked(shape: tuple[int, ...]) -> Any:
    from hwbench.backends.cpu import BlockedArray  # needs no library until it is used

    layout = types.SimpleNamespace(size=64)  # a stand-in descriptor: never read by a check
    return BlockedArray(np.zeros(16, np.float32), shape, layout, None)


def channels_last(shape: tuple[int, ...], dtype: Any = np.float32) -> Any:
    from hwbench.backends.cpu import ChannelsLastArray

    n, c, h, w = (shape + (1, 1, 1, 1))[:4] if len(shape) < 4 else shape
    return ChannelsLastArray(np.zeros((n, h, w, c), dtype))


_OPENCL: list[Any] = []


def opencl_array(good: np.ndarray) -> Any:
    """``good`` on a second opencl backend (its own context): foreign everywhere."""
    ok, why = availability("opencl")
    if not ok:
        pytest.skip(f"backend opencl unavailable: {why} (needed for a pyopencl array)")
    if not _OPENCL:
        _OPENCL.append(get_backend("opencl"))
    return _OPENCL[0].asarray(good)


# -- bad values per kind of argument: name -> f(good value) -> bad value -----------------------
# Values whose error is an OutOfMemoryError are named "huge..." (see ``expect_oom``).
FOREIGN: dict[str, Callable[[Any], Any]] = {
    "foreign-cpu-blocked": lambda g: blocked(tuple(np.shape(g))),
    "foreign-cpu-channels-last": lambda g: channels_last(tuple(np.shape(g)), g.dtype),
    "foreign-pyopencl": opencl_array,
    "fake-array": lambda g: FakeArray(tuple(np.shape(g)), g.dtype),
    "fake-array-no-numeric-dtype": lambda g: FakeArray(tuple(np.shape(g)), "banana"),
}
NOT_ARRAYS: dict[str, Callable[[Any], Any]] = {
    "str": lambda g: "abc",
    "object": lambda g: object(),
    "dict": lambda g: {"x": g},
    "ragged-list": lambda g: [[0.5], [0.5, 0.5]],
    "object-dtype": lambda g: np.empty(np.shape(g), object),
    "str-dtype": lambda g: np.full(np.shape(g), "a"),
    "complex64": lambda g: np.ones(np.shape(g), np.complex64),
    "bool-dtype": lambda g: np.ones(np.shape(g), bool),
    **FOREIGN,
}
FLOAT_VALUES: dict[str, Callable[[Any], Any]] = {
    "float64": lambda g: g.astype(np.float64),
    "float16": lambda g: g.astype(np.float16),
    "int32": lambda g: g.astype(np.int32),
    "uint8": lambda g: g.astype(np.uint8),
    "nan": lambda g: _poison(g, NAN),
    "inf": lambda g: _poison(g, INF),
    "neg-inf": lambda g: _poison(g, -INF),
}
INT8_VALUES: dict[str, Callable[[Any], Any]] = {
    "float32": lambda g: g.astype(np.float32),
    "int16": lambda g: g.astype(np.int16),
    "int32": lambda g: g.astype(np.int32),
    "uint16": lambda g: g.astype(np.uint16),
}
FIXED_RANK: dict[str, Callable[[Any], Any]] = {
    "0-d": lambda g: g.dtype.type(1),
    "extra-dim": lambda g: g[..., None],
    "missing-dim": lambda g: g[0],
    "zero-size": lambda g: g[:0],
}


def _poison(good: np.ndarray, value: float) -> np.ndarray:
    out = np.array(good, copy=True)
    out.flat[out.size // 2] = value
    return out


def array_kind(*, required: bool, floats: bool, fixed_rank: bool) -> dict[str, Callable]:
    values = dict(NOT_ARRAYS)
    values.update(FLOAT_VALUES if floats else INT8_VALUES)
    if fixed_rank:
        values.update(FIXED_RANK)
    else:
        values["zero-size"] = lambda g: np.zeros((0,) + np.shape(g)[1:], g.dtype)
    if required:
        values["none"] = lambda g: None
    return values


def scalars(*values: Any, names: tuple[str, ...] | None = None) -> dict[str, Callable]:
    names = names or tuple(repr(v) for v in values)
    return {name: (lambda g, v=v: v) for name, v in zip(names, values, strict=True)}


COMMON_SCALARS = scalars(None, "1", 1.5, NAN, INF, object(), [1, "2"],
                         names=("none", "str", "float", "nan", "inf", "object", "mixed-list"))
REAL_SCALARS = {k: v for k, v in COMMON_SCALARS.items() if k != "float"}  # 1.5 is fine
KINDS: dict[str, dict[str, Callable]] = {
    "f32-fixed": array_kind(required=True, floats=True, fixed_rank=True),
    "f32-any": array_kind(required=True, floats=True, fixed_rank=False),
    "f32-optional": array_kind(required=False, floats=True, fixed_rank=True),
    "f32-broadcast-optional": array_kind(required=False, floats=True, fixed_rank=False),
    "int8-fixed": array_kind(required=True, floats=False, fixed_rank=True),
    "int8-any": array_kind(required=True, floats=False, fixed_rank=False),
    "flag": scalars(1, 0, "yes", None, 1.0, np.array([True, False])),
    "stride": {**COMMON_SCALARS, **scalars(0, -1, True, (1,), (1, 2, 3), (1, "2"), (1, 0))},
    "padding": {**COMMON_SCALARS, **scalars(-1, (0, 0, -1, 0), (1, 1, 1), True, (1, None),
                                            (1.0, 1.0)),
                "huge": lambda g: HUGE, "huge-end": lambda g: (0, 0, HUGE, HUGE)},
    "groups": {**COMMON_SCALARS, **scalars(0, -1, True, 3, 1 << 62, np.array([1]))},
    "activation": scalars("gelu_erf", "RELU", 1, ["relu"], True),
    "zero-point": scalars(300, -1, 1.5, "x", np.float32(1), NAN, np.zeros(7, np.uint8),
                          object(), np.int16(3), np.zeros((2, 2), np.uint8)),
    "scale": scalars(0, -1.0, NAN, INF, "x", None, np.zeros(0, np.float32), object(), 1 + 2j,
                     np.ones(7, np.float32), np.ones((1, 2), np.float32),
                     np.array([0.1, -0.1], np.float32)),
    "axis": scalars(1.5, None, "0", 99, -99, True, NAN, (0,)),
    "kernel": {**COMMON_SCALARS, **scalars(0, -1, True, (2,), 99, (2, 0))},
    "lrn-size": {**COMMON_SCALARS, **scalars(0, 2, -3, True, (3,))},
    "real": {**REAL_SCALARS, **scalars(True, 1 + 1j)},
    "positive-real": {**REAL_SCALARS, **scalars(0.0, -1.0, True)},
    "non-negative-real": {**REAL_SCALARS, **scalars(-1e-4, True)},
    "shape": scalars("ab", None, 1.5, (-1, -1), (0, 6), (2.0, 3.0), (7,), (-2, -3), {},
                     (1 << 62, 1 << 62), (2, None)),
    "perm": scalars((0, 0), "10", 1.5, (5, 1), (0,), (-1, 0), (0, 1, 2), (0, None)),
    "arrays": {**scalars(None, "x", [], (), [None], {}, 3,
                         names=("none", "str", "empty-list", "empty-tuple", "list-of-none",
                                "dict", "int")),
               "not-a-list": lambda g: f32(2, 3),
               "item-str": lambda g: [f32(2, 3), "x"],
               "item-float64": lambda g: [f32(2, 3), np.ones((2, 3))],
               "item-0d": lambda g: [np.float32(1), np.float32(2)],
               "item-shape-mismatch": lambda g: [f32(2, 3), f32(3, 4)],
               "item-rank-mismatch": lambda g: [f32(2, 3), f32(2, 3, 1)],
               "item-nan": lambda g: [f32(2, 3), _poison(f32(2, 3), NAN)],
               "item-foreign-cpu-blocked": lambda g: [f32(2, 3), blocked((2, 3))],
               "item-foreign-pyopencl": lambda g: [f32(2, 3), opencl_array(f32(2, 3))],
               "item-fake-array": lambda g: [f32(2, 3), FakeArray((2, 3))]},
}

# op -> (good keyword arguments, {argument: kind}); every argument listed gets every bad
# value of its kind.
Q = {"x_scale": np.float32(0.05), "w_scale": np.float32(0.02), "y_scale": np.float32(0.1),
     "y_zero_point": np.uint8(128)}
OPS: dict[str, tuple[Callable[[], dict[str, Any]], dict[str, str]]] = {
    "gemm": (lambda: {"a": f32(3, 4), "b": f32(4, 5), "bias": f32(5)},
             {"a": "f32-fixed", "b": "f32-fixed", "bias": "f32-broadcast-optional",
              "trans_a": "flag", "trans_b": "flag"}),
    "conv2d": (lambda: {"x": f32(1, 4, 6, 6), "w": f32(2, 4, 3, 3), "bias": f32(2),
                        "residual": f32(1, 2, 4, 4), "activation": "relu"},
               {"x": "f32-fixed", "w": "f32-fixed", "bias": "f32-optional",
                "residual": "f32-optional", "stride": "stride", "padding": "padding",
                "dilation": "stride", "groups": "groups", "activation": "activation"}),
    "sigmoid": (lambda: {"x": f32(2, 3)}, {"x": "f32-any"}),
    "relu": (lambda: {"x": f32(2, 3)}, {"x": "f32-any"}),
    "sigmoid_backward": (lambda: {"y": f32(2, 3), "dy": f32(2, 3)},
                         {"y": "f32-any", "dy": "f32-any"}),
    "gemm_int8": (lambda: {"a": u8(3, 4), "b": s8(4, 5), "a_zero_point": np.uint8(3),
                           "b_zero_point": np.int8(0)},
                  {"a": "int8-fixed", "b": "int8-fixed", "a_zero_point": "zero-point",
                   "b_zero_point": "zero-point"}),
    "qgemm": (lambda: {"a": u8(3, 4), "a_scale": np.float32(0.05),
                       "a_zero_point": np.uint8(128), "b": s8(4, 5),
                       "b_scale": np.float32(0.02), "b_zero_point": np.int8(0),
                       "y_scale": np.float32(0.1), "y_zero_point": np.uint8(128)},
              {"a": "int8-fixed", "b": "int8-fixed", "a_scale": "scale", "b_scale": "scale",
               "y_scale": "scale", "a_zero_point": "zero-point", "y_zero_point": "zero-point"}),
    "conv2d_int8": (lambda: {"x": u8(1, 4, 6, 6), "w": s8(2, 4, 3, 3),
                             "x_zero_point": np.uint8(3), "w_zero_point": np.int8(0)},
                    {"x": "int8-fixed", "w": "int8-fixed", "x_zero_point": "zero-point",
                     "w_zero_point": "zero-point", "stride": "stride", "padding": "padding",
                     "dilation": "stride", "groups": "groups"}),
    "qconv2d": (lambda: {"x": u8(1, 4, 6, 6), "x_zero_point": np.uint8(3), "w": s8(2, 4, 3, 3),
                         "w_zero_point": np.int8(0), "bias": i32(2), **Q},
                {"x": "int8-fixed", "w": "int8-fixed", "x_scale": "scale", "w_scale": "scale",
                 "y_scale": "scale", "y_zero_point": "zero-point", "stride": "stride",
                 "padding": "padding", "groups": "groups"}),
    "quantize_linear": (lambda: {"x": f32(2, 3), "scale": np.full(3, 0.1, np.float32),
                                 "zero_point": np.zeros(3, np.uint8), "axis": 1},
                        {"x": "f32-any", "scale": "scale", "axis": "axis"}),
    "dequantize_linear": (lambda: {"x": u8(2, 3), "scale": np.float32(0.1),
                                   "zero_point": np.uint8(0)},
                          {"x": "int8-any", "scale": "scale"}),
    "max_pool2d": (lambda: {"x": f32(1, 2, 6, 6), "kernel": 2},
                   {"x": "f32-fixed", "kernel": "kernel", "stride": "stride",
                    "padding": "padding", "dilation": "stride", "ceil_mode": "flag"}),
    "avg_pool2d": (lambda: {"x": f32(1, 2, 6, 6), "kernel": 2},
                   {"x": "f32-fixed", "kernel": "kernel", "stride": "stride",
                    "padding": "padding", "ceil_mode": "flag", "count_include_pad": "flag"}),
    "global_avg_pool2d": (lambda: {"x": f32(1, 2, 3, 3)}, {"x": "f32-fixed"}),
    "softmax": (lambda: {"x": f32(2, 3), "axis": -1}, {"x": "f32-fixed", "axis": "axis"}),
    "add": (lambda: {"a": f32(2, 3, 4), "b": f32(3, 1)}, {"a": "f32-any", "b": "f32-any"}),
    "mul": (lambda: {"a": f32(2, 3, 4), "b": f32(3, 1)}, {"a": "f32-any", "b": "f32-any"}),
    "concat": (lambda: {"arrays": [f32(2, 3), f32(2, 3)], "axis": 0},
               {"arrays": "arrays", "axis": "axis"}),
    "lrn": (lambda: {"x": f32(1, 4, 3, 3), "size": 3},
            {"x": "f32-fixed", "size": "lrn-size", "alpha": "non-negative-real",
             "beta": "real", "bias": "positive-real"}),
    "reshape": (lambda: {"x": f32(2, 3), "shape": (3, 2)}, {"x": "f32-any", "shape": "shape"}),
    "transpose": (lambda: {"x": f32(2, 3), "perm": (1, 0)}, {"x": "f32-any", "perm": "perm"}),
}
# Values a kind lists that are fine for one op: (op, argument, value name).
VALID_HERE = {
    ("softmax", "x", "missing-dim"),  # rank 1 is fine for softmax
    ("softmax", "x", "extra-dim"),
    ("softmax", "x", "neg-inf"),  # a masked score (test_masked_softmax.py)
    ("reshape", "x", "float16"), ("reshape", "x", "uint8"), ("reshape", "x", "int32"),
    ("transpose", "x", "float16"), ("transpose", "x", "uint8"), ("transpose", "x", "int32"),
    ("reshape", "x", "bool-dtype"), ("transpose", "x", "bool-dtype"),
    ("quantize_linear", "x", "zero-size"), ("dequantize_linear", "x", "zero-size"),  # ONNX
    ("dequantize_linear", "x", "int32"),  # int32 (bias) data with zero point 0 is valid
    ("gemm_int8", "b_zero_point", "-1"), ("conv2d_int8", "w_zero_point", "-1"),  # int8
    ("max_pool2d", "stride", "none"), ("avg_pool2d", "stride", "none"),  # ONNX's default 1
    ("quantize_linear", "scale", "array([1., 1., 1., 1., 1., 1., 1.], dtype=float32)"),
}
# Host scalars (scales, zero points) are never uploaded; array arguments are.
HOST_KINDS = {"zero-point", "scale", "host"}
# Sizes that cannot fit: (op, argument, value) -> OutOfMemoryError on every backend.
HUGE_CASES: dict[str, Callable[[], tuple[str, dict[str, Any]]]] = {
    "gemm-huge-m-n": lambda: ("gemm", {"a": huge(HUGE, 4), "b": huge(4, HUGE)}),
    "gemm-huge-200000-cubed": lambda: ("gemm", {"a": huge(200_000, 200_000),
                                                "b": huge(200_000, 200_000)}),
    "conv2d-huge-padding": lambda: ("conv2d", {"x": f32(1, 4, 6, 6), "w": f32(2, 4, 3, 3),
                                               "padding": HUGE}),
    "conv2d-huge-batch": lambda: ("conv2d", {"x": huge(HUGE, 4, 6, 6), "w": f32(2, 4, 3, 3)}),
    "sigmoid-huge": lambda: ("sigmoid", {"x": huge(HUGE, 8)}),
    "relu-huge": lambda: ("relu", {"x": huge(HUGE, 8)}),
    "sigmoid_backward-huge": lambda: ("sigmoid_backward", {"y": huge(HUGE, 8),
                                                           "dy": huge(HUGE, 8)}),
    "add-huge-broadcast": lambda: ("add", {"a": huge(HUGE, 1), "b": huge(1, HUGE)}),
    "mul-huge-broadcast": lambda: ("mul", {"a": huge(HUGE, 1), "b": f32(1, 1 << 12)}),
    "gemm_int8-huge": lambda: ("gemm_int8", {"a": np.broadcast_to(np.uint8(1), (HUGE, 4)),
                                             "b": np.broadcast_to(np.int8(1), (4, HUGE))}),
    "max_pool2d-huge": lambda: ("max_pool2d", {"x": huge(1, 1, 4, HUGE), "kernel": 2}),
    "lrn-huge-size": lambda: ("lrn", {"x": f32(1, 4, 3, 3), "size": HUGE + 1}),
    "softmax-huge": lambda: ("softmax", {"x": huge(HUGE, 8)}),
    "concat-huge": lambda: ("concat", {"arrays": [huge(HUGE, 8), huge(HUGE, 8)], "axis": 0}),
    "transpose-huge": lambda: ("transpose", {"x": huge(HUGE, 8), "perm": (1, 0)}),
}

BACKENDS = ["numpy", "cpu", "cpu:mkl", "systolic", "opencl", "cuda"]
_INSTANCES: dict[str, Any] = {}


def backend_named(name: str) -> Any:
    if name not in _INSTANCES:
        ok, why = availability(name)
        if not ok:
            pytest.skip(f"backend {name} unavailable: {why}")
        _INSTANCES[name] = get_backend(name)
    return _INSTANCES[name]


def upload(backend: Any, kind: str, value: Any) -> Any:
    """Plain host arrays of array arguments go to the device; bad values go as they are."""
    if kind in HOST_KINDS or not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        return value
    if np.isfinite(value).all() if value.dtype.kind == "f" else True:
        return backend.asarray(value)
    return backend.asarray(value)  # NaN/inf uploaded too: the screen must see them


def kernel_cases() -> list[Any]:
    params = []
    for op, (_, kinds) in OPS.items():
        for argument, kind in kinds.items():
            for value_name in KINDS[kind]:
                if (op, argument, value_name) in VALID_HERE:
                    continue
                params.append(pytest.param(op, argument, kind, value_name,
                                           id=f"{op}-{argument}-{value_name}"))
    return params


KERNEL_CASES = kernel_cases()


def owns(backend_name: str, value_name: str) -> bool:
    """Foreign arrays that are the backend's own (a cpu BlockedArray on cpu) are valid."""
    base = backend_name.split(":")[0]
    return (base == "cpu" and value_name.startswith(("foreign-cpu", "item-foreign-cpu"))) or (
        base == "opencl" and False)


def assert_names(exc: BaseException, op: str, argument: str) -> None:
    message = str(exc)
    assert isinstance(exc, HwbenchError), f"{type(exc).__name__}: {message}"
    if isinstance(exc, OutOfMemoryError):
        assert "needs" in message and ("free" in message or "allows" in message), message
        return
    assert names_argument(message, argument) or (
        argument in ("a", "b") and names_argument(message, "a") and names_argument(
            message, "b")), f"{argument!r} not named in: {message!r}"


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("op,argument,kind,value_name", KERNEL_CASES)
def test_kernel_bad_argument(backend_name, op, argument, kind, value_name):
    if owns(backend_name, value_name):
        pytest.skip(f"{value_name} is {backend_name}'s own array type")
    backend = backend_named(backend_name)
    good, _ = OPS[op]
    kwargs = good()
    kinds = OPS[op][1]
    default = kwargs.get(argument, f32(2, 3))
    kwargs[argument] = KINDS[kind][value_name](default)
    args = {k: upload(backend, kinds.get(k, "host"), v) if k != argument else v
            for k, v in kwargs.items()}
    if op == "concat" and argument == "axis":
        args["arrays"] = [backend.asarray(a) for a in kwargs["arrays"]]
    with pytest.raises(Exception) as info:  # noqa: PT011 - any exception, checked below
        getattr(backend, op)(**args)
    assert_names(info.value, op, argument)


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("op", list(OPS))
def test_kernel_good_call_runs(backend_name, op):
    """The corpus' good calls work: each bad value is what makes its case fail."""
    backend = backend_named(backend_name)
    good, kinds = OPS[op]
    args = {k: upload(backend, kinds.get(k, "host"), v) for k, v in good().items()}
    if op == "concat":
        args["arrays"] = [backend.asarray(a) for a in args["arrays"]]
    out = backend.to_numpy(getattr(backend, op)(**args))
    assert out.size > 0


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("case", list(HUGE_CASES))
def test_sizes_that_cannot_fit_are_refused_before_allocating(backend_name, case):
    backend = backend_named(backend_name)
    op, kwargs = HUGE_CASES[case]()
    with pytest.raises(OutOfMemoryError) as info:
        getattr(backend, op)(**kwargs)
    assert isinstance(info.value, MemoryError)
    message = str(info.value)
    assert "needs" in message and "fit" in message, message


# -- memory: asarray, empty, to_numpy -------------------------------------------------------------
ASARRAY_BAD = {"none": None, "str": "abc", "object": object(), "dict": {"a": 1},
               "ragged": [[1.0], [1.0, 2.0]], "str-list": ["a", "b"],
               "object-dtype": np.empty(3, object), "datetime": np.zeros(2, "datetime64[s]")}
EMPTY_BAD = {"shape-negative": ((-1,), np.float32), "shape-negative-2d": ((2, -1), np.float32),
             "shape-float": (1.5, np.float32), "shape-str": ("3", np.float32),
             "shape-none": (None, np.float32), "shape-float-item": ((2, 1.5), np.float32),
             "shape-bool": (True, np.float32), "shape-dict": ({}, np.float32),
             "dtype-banana": ((2,), "banana"), "dtype-object": ((2,), object),
             "dtype-str": ((2,), "U5"), "dtype-none-type": ((2,), type(None)),
             "shape-huge": ((HUGE, HUGE), np.float32), "shape-huge-int8": ((HUGE, 1 << 20),
                                                                           np.int8)}


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("value_name", [*ASARRAY_BAD, *FOREIGN, "huge"])
def test_asarray_bad_input(backend_name, value_name):
    if owns(backend_name, value_name):
        pytest.skip(f"{value_name} is {backend_name}'s own array type")
    backend = backend_named(backend_name)
    if value_name == "huge":
        value = huge(HUGE, 8)
    elif value_name in FOREIGN:
        value = FOREIGN[value_name](f32(2, 3))
    else:
        value = ASARRAY_BAD[value_name]
    with pytest.raises(Exception) as info:  # noqa: PT011
        backend.asarray(value)
    assert_names(info.value, "asarray", "x")


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("value_name", list(EMPTY_BAD))
def test_empty_bad_input(backend_name, value_name):
    backend = backend_named(backend_name)
    shape, dtype = EMPTY_BAD[value_name]
    with pytest.raises(Exception) as info:  # noqa: PT011
        backend.empty(shape, dtype)
    assert_names(info.value, "empty", value_name.split("-")[0])


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("value_name", ["none", "str", "object", "dict", "object-dtype",
                                        *FOREIGN])
def test_to_numpy_bad_input(backend_name, value_name):
    if owns(backend_name, value_name):
        pytest.skip(f"{value_name} is {backend_name}'s own array type")
    backend = backend_named(backend_name)
    value = FOREIGN[value_name](f32(2, 3)) if value_name in FOREIGN else ASARRAY_BAD[value_name]
    with pytest.raises(Exception) as info:  # noqa: PT011
        backend.to_numpy(value)
    assert_names(info.value, "to_numpy", "x")


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_foreign_array_message_says_who_made_it_and_what_to_do(backend_name):
    backend = backend_named(backend_name)
    if backend_name.split(":")[0] == "cpu":
        pytest.skip("a cpu BlockedArray is cpu's own")
    with pytest.raises(ForeignArrayError) as info:
        backend.sigmoid(blocked((2, 3)))
    message = str(info.value)
    assert "'x'" in message and "'cpu'" in message
    assert "to_numpy()" in message and "asarray()" in message


def test_check_finite_false_does_not_let_foreign_arrays_through():
    """numpy given opencl arrays unscreened returned a dtype=object array."""
    unchecked = get_backend("numpy", check_finite=False)
    a = opencl_array(f32(3, 4))
    with pytest.raises(ForeignArrayError, match="'a'"):
        unchecked.gemm(a, f32(4, 5))
    with pytest.raises(ForeignArrayError, match="'x'"):
        unchecked.sigmoid(blocked((2, 3)))


# -- valid edge inputs: the right answer on every backend ------------------------------------------
def sigmoid64(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


EDGE_CASES: dict[str, tuple[Callable[[], tuple[str, dict[str, Any]]], Callable]] = {
    "sigmoid-0d": (lambda: ("sigmoid", {"x": np.array(0.3, np.float32)}),
                   lambda x: sigmoid64(x)),
    "sigmoid-numpy-scalar": (lambda: ("sigmoid", {"x": np.float32(-1.5)}),
                             lambda x: sigmoid64(x)),
    "relu-0d": (lambda: ("relu", {"x": np.array(-0.3, np.float32)}),
                lambda x: np.maximum(x, 0)),
    "relu-numpy-scalar": (lambda: ("relu", {"x": np.float32(2.5)}), lambda x: np.maximum(x, 0)),
    "sigmoid_backward-0d": (lambda: ("sigmoid_backward", {"y": np.array(0.25, np.float32),
                                                          "dy": np.float32(2.0)}),
                            lambda y, dy: dy * y * (1 - y)),
    "add-0d": (lambda: ("add", {"a": np.float32(1.5), "b": np.array(2.0, np.float32)}),
               lambda a, b: a + b),
    "mul-0d-broadcast": (lambda: ("mul", {"a": np.float32(3.0), "b": f32(2, 3)}),
                         lambda a, b: a * b),
    "reshape-0d": (lambda: ("reshape", {"x": np.float32(4.0), "shape": (1, 1)}),
                   lambda x: np.reshape(x, (1, 1))),
    "sigmoid-non-contiguous": (lambda: ("sigmoid", {"x": np.linspace(-3, 3, 40, dtype=np.float32)
                                                    .reshape(5, 8)[:, ::3]}),
                               lambda x: sigmoid64(x)),
    "sigmoid-negative-strides": (lambda: ("sigmoid", {"x": np.linspace(-3, 3, 12,
                                                                       dtype=np.float32)[::-1]}),
                                 lambda x: sigmoid64(x)),
    "add-transposed": (lambda: ("add", {"a": np.arange(12, dtype=np.float32).reshape(3, 4).T,
                                        "b": f32(4, 3)}), lambda a, b: a + b),
    "gemm-transposed-views": (lambda: ("gemm", {"a": np.arange(12, dtype=np.float32)
                                                .reshape(4, 3).T / 10,
                                                "b": np.arange(20, dtype=np.float32)
                                                .reshape(5, 4).T / 10}),
                              lambda a, b: np.asarray(a, np.float64) @ b),
    "gemm-strided": (lambda: ("gemm", {"a": np.ones((6, 8), np.float32)[::2, ::2],
                                       "b": np.ones((4, 3), np.float32)}),
                     lambda a, b: np.asarray(a, np.float64) @ b),
}


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_valid_edge_input_gives_the_right_answer(backend_name, case):
    backend = backend_named(backend_name)
    build, reference = EDGE_CASES[case]
    op, kwargs = build()
    host = backend.to_numpy(getattr(backend, op)(**kwargs))
    assert isinstance(host, np.ndarray)
    expected = reference(*kwargs.values()) if op != "reshape" else reference(kwargs["x"])
    assert host.shape == np.shape(expected)
    assert host.dtype == np.float32
    tolerance = 2e-2 if backend_name == "systolic" else 1e-5  # systolic quantizes floats
    np.testing.assert_allclose(host, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("op", ["sigmoid", "relu"])
def test_zero_d_device_array(backend_name, op):
    """A 0-d array uploaded first (``asarray``) works as a host one does."""
    backend = backend_named(backend_name)
    out = backend.to_numpy(getattr(backend, op)(backend.asarray(np.array(0.3, np.float32))))
    assert out.shape == ()


# -- the API outside the kernels -------------------------------------------------------------
FILES: dict[str, Callable[[Any], str]] = {}


def _file(tmp_path: Any, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _onnx_bytes() -> bytes:
    onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
    return hwbench.load_model("mlp").to_onnx().SerializeToString() if onnx else b""


MODEL_PATHS: dict[str, Callable[[Any], Any]] = {
    "missing-file": lambda t: str(t / "missing.onnx"),
    "empty-file": lambda t: _file(t, "empty.onnx", b""),
    "binary-garbage": lambda t: _file(t, "garbage.onnx", bytes(range(256)) * 8),
    "text-file": lambda t: _file(t, "text.onnx", b"hello, I am not a model\n"),
    "json-file": lambda t: _file(t, "model.onnx", b'{"graph": {}}'),
    "truncated-model": lambda t: _file(t, "cut.onnx", _onnx_bytes()[:200]),
    "truncated-half": lambda t: _file(t, "half.onnx",
                                      _onnx_bytes()[:len(_onnx_bytes()) // 2]),
    "directory": lambda t: str(t),
    "directory-named-onnx": lambda t: (os.makedirs(t / "d.onnx", exist_ok=True),
                                       str(t / "d.onnx"))[1],
    "unknown-name": lambda t: "no-such-model",
    "empty-name": lambda t: "",
    "none": lambda t: None,
    "int": lambda t: 3,
    "list": lambda t: ["mlp"],
    "bytes": lambda t: b"mlp",
}


@pytest.mark.parametrize("value_name", list(MODEL_PATHS))
def test_load_model_bad_name_or_path(tmp_path, value_name):
    value = MODEL_PATHS[value_name](tmp_path)
    with pytest.raises(HwbenchError):
        hwbench.load_model(value)


@pytest.mark.parametrize("batch", [0, -1, 1.5, "8", True, NAN, [2], np.float32(2)],
                         ids=["zero", "negative", "float", "str", "bool", "nan", "list",
                              "float32"])
def test_load_model_bad_batch(batch):
    with pytest.raises(HwbenchError, match="'batch'"):
        hwbench.load_model("mlp", batch=batch)


@pytest.fixture(scope="module")
def mlp():
    return hwbench.load_model("mlp")


@pytest.mark.parametrize("backend", [None, 1, "", "nope", "cpu:[/x]", "numpy:7", ["numpy"],
                                     "opencl:99", "systolic:no-such-config"],
                         ids=["none", "int", "empty", "unknown", "markup", "numpy-device",
                              "list", "opencl-device", "systolic-config"])
def test_session_bad_backend(mlp, backend):
    with pytest.raises(HwbenchError):
        hwbench.Session(mlp, backend=backend)


@pytest.mark.parametrize("precision", ["fp16", None, 1, "FP32", "", "int4"])
def test_session_bad_precision(mlp, precision):
    with pytest.raises(HwbenchError, match="'precision'"):
        hwbench.Session(mlp, backend="numpy", precision=precision)


@pytest.mark.parametrize("options", [{"foo": 1}, {"threads": 0}, {"threads": "2"},
                                     {"check_finite": "no"}, {"device": "x"}],
                         ids=["unknown", "threads-zero", "threads-str", "check_finite-str",
                              "device"])
def test_session_and_get_backend_bad_options(mlp, options):
    name = next(iter(options))
    with pytest.raises(HwbenchError, match=f"'{name}'"):
        hwbench.Session(mlp, backend="numpy", **options)
    with pytest.raises(HwbenchError, match=f"'{name}'"):
        get_backend("numpy", **options)


@pytest.mark.parametrize("model", [None, 3, "nope", b"mlp"], ids=["none", "int", "name", "bytes"])
def test_session_bad_model(model):
    with pytest.raises(HwbenchError, match="'model'|'name_or_path'"):
        hwbench.Session(model, backend="numpy")


@pytest.fixture(scope="module")
def mlp_session(mlp):
    return hwbench.Session(mlp, backend="numpy")


FEEDS: dict[str, Callable[[str, np.ndarray], Any]] = {
    "none": lambda n, x: None,
    "list": lambda n, x: [x],
    "tuple-pairs": lambda n, x: ((n, x),),
    "missing": lambda n, x: {},
    "extra": lambda n, x: {n: x, "other": x},
    "wrong-name": lambda n, x: {"other": x},
    "int-key": lambda n, x: {1: x},
    "shape-short": lambda n, x: {n: x[..., :3]},
    "shape-batch": lambda n, x: {n: np.concatenate([x, x])},
    "shape-extra-dim": lambda n, x: {n: x[None]},
    "0-d": lambda n, x: {n: np.float32(1)},
    "float64": lambda n, x: {n: x.astype(np.float64)},
    "int32": lambda n, x: {n: x.astype(np.int32)},
    "float16": lambda n, x: {n: x.astype(np.float16)},
    "object-dtype": lambda n, x: {n: x.astype(object)},
    "list-value": lambda n, x: {n: x.tolist()},
    "str-value": lambda n, x: {n: "x"},
    "none-value": lambda n, x: {n: None},
    "nan": lambda n, x: {n: _poison(x, NAN)},
    "inf": lambda n, x: {n: _poison(x, INF)},
    "foreign-pyopencl": lambda n, x: {n: opencl_array(x)},
    "foreign-cpu-blocked": lambda n, x: {n: blocked(x.shape)},
}


@pytest.mark.parametrize("value_name", list(FEEDS))
def test_session_run_bad_feeds(mlp, mlp_session, value_name):
    name = mlp.inputs[0]
    x = np.zeros(mlp.input_shapes[name], np.float32)
    with pytest.raises(HwbenchError):
        mlp_session.run(FEEDS[value_name](name, x))


@pytest.mark.parametrize("output_names", [["nope"], "nope", 3, [3], [None]],
                         ids=["unknown", "str", "int", "int-item", "none-item"])
def test_session_run_bad_output_names(mlp, mlp_session, output_names):
    x = np.zeros(mlp.input_shapes[mlp.inputs[0]], np.float32)
    with pytest.raises(HwbenchError, match="output_names"):
        mlp_session.run({mlp.inputs[0]: x}, output_names=output_names)


def test_session_refuses_a_batch_that_cannot_fit():
    """resnet50 at batch 100000 allocated for 85 s until killed: now refused at once."""
    model = hwbench.load_model("resnet50", batch=100_000)
    with pytest.raises(OutOfMemoryError, match=r"batch <= \d+ fits") as info:
        hwbench.Session(model, backend="numpy")
    assert isinstance(info.value, MemoryError)


@pytest.mark.parametrize("calibration", ["abc", [1, 2], 3, [{"nope": 1}], "empty", "float64",
                                         "wrong-shape", "nan"])
def test_quantize_bad_calibration(mlp, calibration):
    x = np.zeros(mlp.input_shapes[mlp.inputs[0]], np.float32)
    value = {"empty": x[:0], "float64": x.astype(np.float64),
             "wrong-shape": np.zeros((4, 3), np.float32),
             "nan": np.full(x.shape, NAN, np.float32)}.get(calibration, calibration) \
        if isinstance(calibration, str) else calibration
    with pytest.raises(HwbenchError):
        hwbench.quantize_model(mlp, value)


@pytest.mark.parametrize("model", [None, "mlp", 3], ids=["none", "name", "int"])
def test_quantize_bad_model(model):
    with pytest.raises(HwbenchError, match="'model'"):
        hwbench.quantize_model(model)


@pytest.mark.parametrize("split", ["bogus", None, 1, ["test"], "TEST", ""])
def test_datasets_bad_split(split):
    with pytest.raises(HwbenchError, match="'split'"):
        hwbench.datasets.digits(split)


def test_corpus_size(request):
    """How many cases this corpus runs here (docs/testing.md quotes it): every collected case
    of this module whose backend is available; at least 550 when the whole file runs."""
    module = request.node.module
    items = [item for item in request.session.items
             if item.module is module and item.name != request.node.name]
    per_backend: dict[str, int] = {}
    api = 0
    for item in items:
        name = getattr(item, "callspec", None) and item.callspec.params.get("backend_name")
        if not name:
            api += 1
        elif availability(name)[0] and not owns(name, item.callspec.params.get(
                "value_name", "")) and not (item.originalname.startswith(
                "test_foreign_array_message") and name.startswith("cpu")):
            per_backend[name] = per_backend.get(name, 0) + 1
    total = api + sum(per_backend.values())
    print(f"\nbad-input API corpus: {total} cases = {api} API cases + "
          + " + ".join(f"{n} {b}" for b, n in per_backend.items()))
    if len(items) >= len(KERNEL_CASES):  # the whole module was collected, not a -k subset
        assert total >= 550


def test_simulator_refuses_a_topology_that_cannot_fit(tmp_path):
    """A SCALE-Sim topology with M=N=K=1e8 asked for 1.1 TiB: now refused at once, saying
    how many folds fit."""
    from hwbench.backends.systolic.config import load_config
    from hwbench.harness.suites.simulate import run_simulation

    path = tmp_path / "huge.csv"
    path.write_text("Layer, M, N, K,\nhuge, 100000000, 100000000, 100000000,\n")
    with pytest.raises(OutOfMemoryError, match=r"folds fit") as info:
        run_simulation(load_config("tpu-v1"), topology=str(path))
    assert isinstance(info.value, MemoryError)
