"""A transformer's dense layers as Gemm by a packed weight (issue 16): the graph pass
``gemm_fusion.matmuls_as_gemm`` (MatMul by a constant weight, and the per-column bias Add
after it, as Reshape → Gemm → Reshape), its near misses, and the cpu backend running a
Gemm by a weight on the packed matmul primitive (normal path and plan replay)."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_close

from hwbench.backends import get_backend
from hwbench.backends.reference import ReferenceBackend
from hwbench.graph import Executor, load_onnx, optimize
from hwbench.graph.gemm_fusion import matmuls_as_gemm
from hwbench.graph.ir import FUSED_DOMAIN, FUSED_GEMM
from hwbench.kernels import spec

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

K, N = 16, 8


def dense_graph(rng):
    """x (2, 4, K): MatMul + Add(bias (N,)) → Relu; MatMul + Add(bias (1, 1, N)); a
    MatMul read twice (no bias taken); near misses: an Add of a full (4, N) constant,
    an Add of two activations, a MatMul of two activations."""
    inits = {f"w{i}": (rng.standard_normal((K if i != 4 else N, N)) / 4).astype(np.float32)
             for i in range(1, 6)}
    inits.update(b1=rng.standard_normal(N).astype(np.float32),
                 b2=rng.standard_normal((1, 1, N)).astype(np.float32),
                 full=rng.standard_normal((4, N)).astype(np.float32))
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["m1"], name="d1"),
        helper.make_node("Add", ["m1", "b1"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["r1"]),
        helper.make_node("MatMul", ["x", "w2"], ["m2"], name="d2"),
        helper.make_node("Add", ["b2", "m2"], ["a2"]),                 # bias first
        helper.make_node("MatMul", ["x", "w3"], ["m3"], name="d3"),
        helper.make_node("Add", ["m3", "full"], ["a3"]),               # not per column
        helper.make_node("Add", ["m3", "a2"], ["a4"]),                 # m3 read twice
        helper.make_node("MatMul", ["a4", "w4"], ["m4"], name="d4"),
        helper.make_node("Add", ["m4", "r1"], ["a5"]),                 # not a constant
        helper.make_node("Transpose", ["a2"], ["a2t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["a3", "a2t"], ["y2"], name="act"),  # no weight
        helper.make_node("MatMul", ["a5", "w5"], ["y1"], name="d5"),  # a graph output
    ]
    inits["w5"] = (rng.standard_normal((N, N)) / 4).astype(np.float32)
    g = helper.make_graph(
        nodes, "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, K])],
        [helper.make_tensor_value_info("y1", TensorProto.FLOAT, [2, 4, N]),
         helper.make_tensor_value_info("y2", TensorProto.FLOAT, [2, 4, 4])],
        [numpy_helper.from_array(a, n) for n, a in inits.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    return optimize(load_onnx(model)), {"x": rng.standard_normal((2, 4, K)).astype(np.float32)}


def test_pass_makes_gemms_of_weight_matmuls_and_skips_near_misses(rng):
    graph, feeds = dense_graph(rng)
    fused = matmuls_as_gemm(graph.copy())
    gemms = {n.name: n for n in fused.nodes if n.op_type in ("Gemm", FUSED_GEMM)}
    assert sorted(gemms) == ["d1", "d2", "d3", "d4", "d5"]
    assert [len(gemms[d].inputs) for d in ("d1", "d2", "d3", "d4", "d5")] == [3, 3, 2, 2, 2]
    assert gemms["d1"].op_type == FUSED_GEMM and gemms["d1"].attrs["activation"] == "relu"
    assert fused.initializers[gemms["d2"].inputs[2]].shape == (N,)  # (1, 1, N) as a row
    counts = fused.op_counts()
    assert counts["MatMul"] == 1 and counts["Add"] == 3 and counts["Reshape"] == 10
    assert "Relu" not in counts and counts["Gemm"] == 4
    assert graph.op_counts()["MatMul"] == 6  # the pass worked on its copy only
    want = Executor(graph, ReferenceBackend()).run(feeds)
    got = Executor(fused, ReferenceBackend()).run(feeds)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_gelu_after_the_bias_joins_the_gemm(rng):
    """BERT's feed-forward layer: MatMul + bias → Gelu (exact; and the tanh form, GPT-2's)
    as one FusedGemm, the cpu backend's gelu post-op giving its Gelu kernel's values."""
    for approximate, name in (("none", "gelu"), ("tanh", "gelu_tanh")):
        w = (rng.standard_normal((K, N)) / 4).astype(np.float32)
        b = rng.standard_normal(N).astype(np.float32)
        nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="ff"),
                 helper.make_node("Add", ["m", "b"], ["a"]),
                 helper.make_node("Gelu", ["a"], ["y"], approximate=approximate)]
        g = helper.make_graph(
            nodes, "ff", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, K])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, N])],
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)],
                                  ir_version=9)
        graph = optimize(load_onnx(model))
        fused = matmuls_as_gemm(graph.copy())
        assert fused.op_counts() == {f"{FUSED_DOMAIN}:{FUSED_GEMM}": 1, "Reshape": 2}
        assert next(n for n in fused.nodes if n.op_type == FUSED_GEMM).attrs == \
            {"activation": name}
        feeds = {"x": rng.standard_normal((2, 3, K)).astype(np.float32)}
        want = Executor(graph, ReferenceBackend()).run(feeds)[0]
        be = get_backend("cpu", threads=1, check_finite=False)
        plain = Executor(graph, be).run(feeds)[0]
        got = Executor(fused, be)
        for _ in range(3):
            out = got.replay(feeds)[0]
            assert_close(out, np.asarray(want, np.float64), K)
            np.testing.assert_allclose(out, plain, rtol=2e-6, atol=1e-6)


def test_cpu_runs_the_rewritten_graph_as_before(rng):
    graph, feeds = dense_graph(rng)
    want = Executor(graph, ReferenceBackend()).run(feeds)
    be = get_backend("cpu", threads=1, check_finite=False)  # (a NaN screen: no plan)
    ex = Executor(matmuls_as_gemm(graph.copy()), be)
    for _ in range(3):  # the normal run, the traced run, a replay
        got = ex.replay(feeds)
        for g, w in zip(got, want, strict=True):
            assert_close(g, np.asarray(w, np.float64), K)
    # one packed primitive per problem: d1 and d2 share one, d4 and d5 another
    assert sum(key[0] == "fused_gemm" and key[2] is None for key in be._primitives) == 3
    ns = ex.plan._fn.__globals__
    calls = [ns[k] for k in ns if k.startswith("K") and getattr(ns[k], "problem", None)
             and isinstance(ns[k].problem, spec.GemmProblem)]
    assert len(calls) == 5 and all(c.fast() for c in calls)  # bound packed primitives


def test_cpu_packs_gemms_of_enough_rows_whatever_b(rng):
    """A Gemm of PACK_MIN_ROWS rows or more runs on the packed primitive, B a weight
    (``asarray``: frozen, packed once) or not (packed per call): the same bits either
    way, so a replay whose feeds are not frozen gives the normal path's. Fewer rows:
    dnnl_sgemm, as before."""
    from hwbench.backends.cpu.fused_gemm import PACK_MIN_ROWS

    be = get_backend("cpu", threads=1)
    w = rng.standard_normal((K, N)).astype(np.float32)
    bias = rng.standard_normal(N).astype(np.float32)
    a = rng.standard_normal((PACK_MIN_ROWS - 1, K)).astype(np.float32)
    assert_close(be.to_numpy(be.gemm(a, be.asarray(w), bias)),
                 a.astype(np.float64) @ w + bias, K)
    assert not any(key[0] == "fused_gemm" for key in be._primitives)
    a = rng.standard_normal((PACK_MIN_ROWS, K)).astype(np.float32)
    plain = be.to_numpy(be.gemm(a, w, bias))
    assert any(key[0] == "fused_gemm" and key[2] is None for key in be._primitives)
    frozen = be.to_numpy(be.gemm(a, be.asarray(w), bias))
    np.testing.assert_array_equal(plain, frozen)
    assert_close(frozen, a.astype(np.float64) @ w + bias, K)


def split_graph(rng):
    """GPT-2's query/key/value projection: x (2, 3, K) @ W (K, 3N) + bias, Split along the
    last axis into N, N, N (constant lengths); a 2-D product by a weight Split into two
    equal parts without a bias; a Split along another axis (left alone)."""
    inits = {"w": rng.standard_normal((K, 3 * N)).astype(np.float32) / 4,
             "b": rng.standard_normal(3 * N).astype(np.float32),
             "lengths": np.array([N, N, N], np.int64),
             "w2": rng.standard_normal((K, 2 * N)).astype(np.float32) / 4,
             "w3": rng.standard_normal((K, N)).astype(np.float32) / 4}
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="qkv"),
        helper.make_node("Add", ["m", "b"], ["mb"]),
        helper.make_node("Split", ["mb", "lengths"], ["q", "k", "v"], axis=-1),
        helper.make_node("Reshape", ["x", "flat"], ["x2"]),
        helper.make_node("MatMul", ["x2", "w2"], ["m2"], name="halves"),
        helper.make_node("Split", ["m2"], ["h1", "h2"], axis=1),
        helper.make_node("MatMul", ["x", "w3"], ["m3"], name="rows"),
        helper.make_node("Split", ["m3"], ["r1", "r2"], axis=0),
    ]
    inits["flat"] = np.array([6, K], np.int64)
    outs = {"q": [2, 3, N], "k": [2, 3, N], "v": [2, 3, N], "h1": [6, N], "h2": [6, N],
            "r1": [1, 3, N], "r2": [1, 3, N]}
    g = helper.make_graph(
        nodes, "split", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, K])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outs.items()],
        [numpy_helper.from_array(a, n) for n, a in inits.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    return optimize(load_onnx(model)), {"x": rng.standard_normal((2, 3, K)).astype(np.float32)}


def test_split_of_a_product_becomes_one_gemm_per_part(rng):
    graph, feeds = split_graph(rng)
    fused = matmuls_as_gemm(graph.copy())
    gemms = {n.name: n for n in fused.nodes if n.op_type == "Gemm"}
    assert sorted(gemms) == ["halves_part0", "halves_part1", "qkv_part0", "qkv_part1",
                             "qkv_part2", "rows"]
    assert fused.initializers[gemms["qkv_part1"].inputs[1]].shape == (K, N)
    np.testing.assert_array_equal(fused.initializers[gemms["qkv_part2"].inputs[2]],
                                  graph.initializers["b"][2 * N:])
    assert fused.op_counts()["Split"] == 1  # the one along the rows
    want = Executor(graph, ReferenceBackend()).run(feeds)
    for be in (ReferenceBackend(), get_backend("cpu", threads=1, check_finite=False)):
        ex = Executor(fused, be)
        for _ in range(3):
            for g, w in zip(ex.replay(feeds), want, strict=True):
                assert_close(g, np.asarray(w, np.float64), K)


@pytest.mark.parametrize("backend, rewritten", [("numpy", True), ("systolic", False)])
def test_session_rewrites_unless_the_backend_quantizes_float_matmuls(rng, backend, rewritten):
    """systolic quantizes each float matmul call per tensor: one 2-D Gemm over a batched
    MatMul's slices would quantize them together (BERT's error rose past its bound)."""
    import hwbench
    from hwbench.models.model import Model

    graph, _ = dense_graph(rng)
    sess = hwbench.Session(Model("dense", graph), backend=backend)
    assert any(n.op_type == "MatMul" and n.name == "d1" for n in sess.graph.nodes) \
        is not rewritten
