"""The ``cast`` kernel on every backend against NumPy with ONNX Cast's rules (float ->
integer truncates toward zero, anything -> bool is nonzero, bool -> 0/1), Cast of a
run-time tensor through the graph layer, and bad input raising the named hwbench error."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.errors import ArgumentError, DTypeError, UnsupportedError
from hwbench.kernels import spec

TARGETS = [np.dtype(t).name for t in spec.CAST_DTYPES]


def _source(rng, dtype: np.dtype, shape) -> np.ndarray:
    if dtype.kind == "f":  # fractions either side of zero, exact zeros, integral values
        x = rng.uniform(-100, 100, shape)
        x.flat[::5] = 0.0
        x.flat[1::7] = np.round(x.flat[1::7])
        return x.astype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), shape, dtype=dtype)


def _expected(x: np.ndarray, to: np.dtype) -> np.ndarray:
    """ONNX Cast written out independently of hwbench's reference."""
    if to == np.bool_:
        return x != 0
    if x.dtype.kind == "f" and to.kind in "iu":
        t = np.where(x < 0, np.ceil(x), np.floor(x))
        return t.astype(np.float64).astype(to)
    return x.astype(to)


@pytest.mark.parametrize("source", TARGETS)
@pytest.mark.parametrize("to", TARGETS)
@pytest.mark.parametrize("shape", [(7,), (3, 5, 17), ()])
def test_cast_matches_numpy(backend, rng, source, to, shape):
    src, to = np.dtype(source), np.dtype(to)
    x = _source(rng, src, shape)
    if src.kind == "f" and to.kind in "iu":  # stay inside the target's range
        info = np.iinfo(to)
        x = np.clip(x, max(info.min, -100), min(info.max, 100)).astype(src)
    got = backend.to_numpy(backend.cast(backend.asarray(x), to))
    assert got.dtype == to and got.shape == x.shape
    np.testing.assert_array_equal(got, _expected(x, to))


def test_float_to_int_truncates_toward_zero(backend):
    x = np.asarray([-2.9, -2.5, -0.5, 0.5, 2.5, 2.9], np.float32)
    got = backend.to_numpy(backend.cast(backend.asarray(x), np.int32))
    np.testing.assert_array_equal(got, [-2, -2, 0, 0, 2, 2])


def test_nan_is_true_as_bool_and_refused_as_integer(backend):
    x = np.asarray([np.nan, 0.0, -0.0, np.inf], np.float32)
    got = backend.to_numpy(backend.cast(backend.asarray(x), np.bool_))
    np.testing.assert_array_equal(got, [True, False, False, True])
    with pytest.raises(ArgumentError, match="cast: argument 'x' contains NaN"):
        backend.cast(backend.asarray(x), np.int64)


@pytest.mark.parametrize("to", ["uint32", "uint64", "complex64", "not-a-type", None])
def test_unknown_target_is_refused(backend, to):
    x = backend.asarray(np.ones(3, np.float32))
    with pytest.raises(DTypeError, match="cast: argument 'to'"):
        backend.cast(x, to)


def test_unsupported_source_is_refused(backend):
    with pytest.raises(DTypeError, match="cast: argument 'x'"):
        backend.cast(np.ones(3, np.uint32), np.float32)


def _cast_graph(to: int):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Cast", ["r"], ["c"],
                                                                      to=to),
             helper.make_node("Cast", ["c"], ["y"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "cast", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2, 5])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [2, 5])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), onnx


@pytest.mark.parametrize("to, fn", [(7, np.trunc), (9, lambda r: (r != 0).astype(np.float32))])
def test_cast_of_a_run_time_tensor_runs_in_a_session(backend, rng, to, fn):
    from hwbench.graph.onnx_import import load_onnx
    from hwbench.graph.passes import fold_constants, set_output_shapes
    from hwbench.models import Model, Session

    model, _ = _cast_graph(to)
    graph = set_output_shapes(fold_constants(load_onnx(model)))
    x = (rng.standard_normal((2, 5)) * 4).astype(np.float32)
    (got,) = Session(Model("cast", graph), backend=backend).run({"x": x})
    np.testing.assert_array_equal(got, fn(np.maximum(x, 0)).astype(np.float32))


def test_run_time_cast_to_a_type_the_kernel_lacks_is_refused_at_load():
    from hwbench.graph.onnx_import import load_onnx
    from hwbench.graph.passes import fold_constants, set_output_shapes

    model, _ = _cast_graph(12)  # uint32
    with pytest.raises(UnsupportedError, match="Cast to uint32 of a tensor computed at run"):
        set_output_shapes(fold_constants(load_onnx(model)))
