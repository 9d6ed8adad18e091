"""Softmax over masked scores (GPT-style causal masks write -inf): on every backend a -inf
entry gives 0 where its row has a finite entry, and a row of only -inf gives NaN, both as
onnxruntime does; NaN and +inf inputs are still refused by the finite-value screen."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.errors import ArgumentError

NEG = -np.inf


def _scores(rng) -> np.ndarray:
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    causal = np.tril(np.ones((5, 7), bool))
    return np.where(causal, x, np.float32(NEG)).astype(np.float32)


def _masked_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Written out independently: exp over the unmasked entries only, 0 elsewhere."""
    x64 = x.astype(np.float64)
    keep = np.isfinite(x64)
    top = np.max(np.where(keep, x64, -1e300), axis=axis, keepdims=True)
    e = np.where(keep, np.exp(np.where(keep, x64 - top, 0.0)), 0.0)
    return e / e.sum(axis=axis, keepdims=True)


def test_minus_infinity_entries_get_zero(backend, rng):
    x = _scores(rng)
    got = backend.to_numpy(backend.softmax(backend.asarray(x), -1))
    want = _masked_softmax(x)
    assert np.all(got[~np.isfinite(x)] == 0)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


def test_a_row_of_only_minus_infinity_is_nan_as_in_onnxruntime(backend):
    x = np.asarray([[1, NEG, 2, NEG], [NEG] * 4], np.float32)
    got = backend.to_numpy(backend.softmax(backend.asarray(x), -1))
    assert np.all(np.isnan(got[1]))
    np.testing.assert_allclose(got[0], _masked_softmax(x[:1])[0], rtol=2e-6)


def test_onnxruntime_agrees():
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], "s",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.asarray([[1, NEG, 2, NEG], [NEG] * 4], np.float32)
    (y,) = s.run(None, {"x": x})
    np.testing.assert_allclose(y[0], _masked_softmax(x[:1])[0], rtol=1e-6)
    assert np.all(np.isnan(y[1]))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_plus_infinity_are_still_refused(backend, bad):
    x = np.asarray([[1, NEG, bad, 0]], np.float32)
    with pytest.raises(ArgumentError, match="softmax: argument 'x' contains NaN or \\+inf"):
        backend.softmax(backend.asarray(x), -1)


def test_causal_where_then_softmax_runs_in_a_session(backend, rng):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from hwbench.graph.onnx_import import load_onnx
    from hwbench.graph.passes import fold_constants, set_output_shapes
    from hwbench.models import Model, Session

    causal = numpy_helper.from_array(np.tril(np.ones((5, 5), bool)), "causal")
    minus = numpy_helper.from_array(np.asarray(NEG, np.float32), "minus")
    nodes = [helper.make_node("Where", ["causal", "x", "minus"], ["s"]),
             helper.make_node("Softmax", ["s"], ["y"], axis=-1)]
    g = helper.make_graph(nodes, "masked", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2, 5, 5])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [2, 5, 5])], [causal, minus])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    graph = set_output_shapes(fold_constants(load_onnx(model)))
    x = rng.standard_normal((2, 5, 5)).astype(np.float32)
    (got,) = Session(Model("masked", graph), backend=backend).run({"x": x})
    want = _masked_softmax(np.where(np.tril(np.ones((5, 5), bool)), x, NEG))
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)
