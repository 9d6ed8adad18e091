"""A one-row Gemm by a large weight on cpu as oneDNN's 1×1 convolution of a 1×1 image
(``cpu/gemv.py``, issue 16: a CNN's classifier at batch 1): against the float64
reference for B stored either way, with and without a bias, with a fused activation,
in both of the convolution's layouts; the same bits whether B is a weight or not and
in a plan's replay; smaller problems keep their old paths."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_close

from hwbench.backends import get_backend
from hwbench.backends.cpu.gemv import GEMV_MIN_WEIGHT_BYTES, GemvConv, runs_as_gemv
from hwbench.backends.reference import ReferenceBackend
from hwbench.graph import Executor, load_onnx, optimize
from hwbench.kernels import reference, spec

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

# (k, n, trans_b, bias, activation): ShuffleNet's classifier (NHWC: 1000 is not a whole
# number of 16-channel blocks), MobileNet v3's first (nChw16c, HardSwish), B (k, n)
CASES = {
    "shufflenet": (544, 1000, True, True, None),
    "mobilenet-v3": (960, 1280, True, True, "hardswish"),
    "b-not-transposed": (1024, 512, False, False, None),
    "sigmoid-nhwc": (520, 520, True, True, "sigmoid"),
}


def _gemv_prims(be):
    return [p for key, p in be._primitives.items() if key[0] == "fused_gemm"
            and isinstance(p, GemvConv)]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_one_row_by_a_large_weight_runs_as_a_convolution(rng, case):
    k, n, trans_b, has_bias, activation = case
    assert 4 * k * n >= GEMV_MIN_WEIGHT_BYTES
    be = get_backend("cpu", threads=1)
    a = rng.standard_normal((1, k)).astype(np.float32)
    b = (rng.standard_normal((n, k) if trans_b else (k, n)) / 8).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32) if has_bias else None
    frozen = be.to_numpy(be.gemm(a, be.asarray(b), bias, trans_b=trans_b,
                                 activation=activation))
    prims = _gemv_prims(be)
    assert len(prims) == 1
    blocked = k % 16 == 0 and n % 16 == 0
    assert prims[0].impl.startswith("jit_1x1" if blocked else "brgconv_1x1")
    want = reference.gemm(a, b, bias, False, trans_b, activation=activation)
    assert_close(frozen, np.asarray(want, np.float64), k)
    # B not a weight: packed on this call, the same primitive, the same bits
    plain = be.to_numpy(be.gemm(a, b, bias, trans_b=trans_b, activation=activation))
    np.testing.assert_array_equal(plain, frozen)


def test_smaller_products_keep_their_paths(rng):
    """Two rows, a transposed A, or a weight under GEMV_MIN_WEIGHT_BYTES: no GemvConv."""
    for m, k, n, trans_a in ((2, 1024, 1024, False), (1, 1024, 1024, True), (1, 64, 32, False)):
        p = spec.GemmProblem(m=m, k=k, n=n, trans_a=trans_a, trans_b=False)
        assert not runs_as_gemv(p)
        be = get_backend("cpu", threads=1)
        a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        out = be.to_numpy(be.gemm(a, be.asarray(b), trans_a=trans_a, activation="relu"))
        assert not _gemv_prims(be)
        assert_close(out, reference.gemm(a, b, None, trans_a, False, activation="relu"), k)


def classifier_graph(rng, k=1024, hidden=1024, n=1000):
    """x (1, k) → Gemm (B transposed) → HardSwish → Gemm (B (hidden, n)): both rows by
    weights of 4 MB."""
    w1 = (rng.standard_normal((hidden, k)) / np.sqrt(k)).astype(np.float32)
    w2 = (rng.standard_normal((hidden, n)) / np.sqrt(hidden)).astype(np.float32)
    b1 = rng.standard_normal(hidden).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
             helper.make_node("HardSwish", ["h"], ["a"]),
             helper.make_node("Gemm", ["a", "w2"], ["y"])]
    g = helper.make_graph(
        nodes, "classifier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
        [numpy_helper.from_array(a, name) for name, a in (("w1", w1), ("w2", w2), ("b1", b1))])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    return optimize(load_onnx(model)), {"x": rng.standard_normal((1, k)).astype(np.float32)}


def test_a_plan_replays_the_convolution_with_the_normal_paths_bits(rng):
    graph, feeds = classifier_graph(rng)
    want = np.asarray(Executor(graph, ReferenceBackend()).run(feeds)[0], np.float64)
    be = get_backend("cpu", threads=1, check_finite=False)
    ex = Executor(graph, be)
    first = ex.run(feeds)[0]
    assert_close(first, want, 1024)
    for _ in range(3):  # the traced run, then replays
        np.testing.assert_array_equal(ex.replay(feeds)[0], first)
    assert len(_gemv_prims(be)) == 2
    ns = ex.plan._fn.__globals__
    calls = [ns[k] for k in ns if k.startswith("K") and getattr(ns[k], "problem", None)
             and isinstance(ns[k].problem, spec.GemmProblem)]
    assert len(calls) == 2 and all(c.fast() for c in calls)  # bound, not the kernel


def test_the_weight_size_bounds_the_convolution():
    """Under GEMV_MIN_WEIGHT_BYTES the weight stays in cache; over GEMV_MAX_WEIGHT_BYTES
    a packed copy buys nothing: both keep their old paths."""
    from hwbench.backends.cpu.gemv import GEMV_MAX_WEIGHT_BYTES

    row = lambda k, n: spec.GemmProblem(m=1, k=k, n=n)  # noqa: E731
    assert runs_as_gemv(row(512, 512)) and not runs_as_gemv(row(512, 511))
    assert runs_as_gemv(row(4096, 4096)) and 4 * 4096 * 4096 == GEMV_MAX_WEIGHT_BYTES
    assert not runs_as_gemv(row(9216, 4096))
