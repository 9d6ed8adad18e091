"""Activations fused into GEMMs (issue 16): ``gemm(..., activation=)`` for every one of
``spec.ACTIVATIONS`` on every backend (the cpu backend: one oneDNN matmul with the bias
and a post-op), ``fuse_gemm_activations`` finding Gemm → activation in graphs and leaving
near misses alone, and the small zoo models running their dense layers fused."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import ACTIVATED_QUANTIZED_TOL, assert_close, quantizes_float_math

import hwbench
from hwbench.backends import get_backend
from hwbench.backends.reference import ReferenceBackend
from hwbench.errors import ArgumentError
from hwbench.graph import Executor, load_onnx, optimize
from hwbench.graph.gemm_fusion import fuse_gemm_activations
from hwbench.graph.ir import FUSED_DOMAIN, FUSED_GEMM
from hwbench.kernels import reference, spec

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

FUSED = f"{FUSED_DOMAIN}:{FUSED_GEMM}"  # how op_counts() names it
# (m, k, n, trans_a, trans_b, bias shape): a bias per column (the cpu backend's fused
# matmul), no bias, and the broadcasts it leaves to the unfused kernels
CASES = {
    "row": (1, 64, 32, False, False, (32,)),
    "transB": (8, 48, 24, False, True, (1, 24)),
    "transA-nobias": (5, 7, 3, True, True, None),
    "full-bias": (6, 9, 4, False, False, (6, 4)),
    "scalar-bias": (3, 5, 2, True, False, ()),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("activation", list(spec.ACTIVATIONS))
def test_gemm_activation_matches_float64_reference(backend, rng, case, activation):
    m, k, n, ta, tb, bias_shape = case
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    bias = None if bias_shape is None else rng.standard_normal(bias_shape).astype(np.float32)
    out = backend.to_numpy(backend.gemm(
        backend.asarray(a), backend.asarray(b), None if bias is None else backend.asarray(bias),
        ta, tb, activation=activation))
    pre = reference.gemm(a, b, bias, ta, tb)
    want = reference.activation64(pre, activation)
    if quantizes_float_math(backend):  # tanh squashes the int8 GEMM's error's scale
        assert np.max(np.abs(out - want)) / np.max(np.abs(pre)) <= ACTIVATED_QUANTIZED_TOL
    else:
        assert_close(out, want, k, backend=backend)


def test_gemm_refuses_an_unknown_activation():
    be = get_backend("numpy")
    with pytest.raises(ArgumentError, match="gemm: argument 'activation'"):
        be.gemm(np.zeros((2, 3), np.float32), np.zeros((3, 4), np.float32), activation="mish")


def test_cpu_gemm_runs_the_activation_inside_one_matmul(rng, monkeypatch):
    be = get_backend("cpu")
    a = be.asarray(rng.standard_normal((4, 16)).astype(np.float32))
    w = be.asarray(rng.standard_normal((16, 8)).astype(np.float32))
    bias = be.asarray(rng.standard_normal(8).astype(np.float32))
    unfused = be.to_numpy(be.sigmoid(be.gemm(a, w, bias)))

    def no_call(*args, **kwargs):
        raise AssertionError("the activation ran as a kernel of its own")
    monkeypatch.setattr(be, "_sigmoid", no_call)
    fused = be.to_numpy(be.gemm(a, w, bias, activation="sigmoid"))
    np.testing.assert_allclose(fused, unfused, rtol=1e-5, atol=1e-6)
    assert any(key[0] == "fused_gemm" for key in be._primitives)


def test_cpu_gemm_with_large_weights_runs_sgemm_then_the_activation(rng, monkeypatch):
    """Above FUSED_MAX_WEIGHT_BYTES of B no packed copy is kept: sgemm as before, then
    the activation's own kernel (the limit lowered to 4 MiB: a test-sized B above it)."""
    from hwbench.backends.cpu import fused_gemm

    monkeypatch.setattr(fused_gemm, "FUSED_MAX_WEIGHT_BYTES", 4 << 20)
    be = get_backend("cpu")
    k, n = 1100, 1000
    assert 4 * k * n > fused_gemm.FUSED_MAX_WEIGHT_BYTES
    a = rng.standard_normal((2, k)).astype(np.float32)
    w = (rng.standard_normal((k, n)) / 30).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    calls = []
    relu = be._relu
    be._relu = lambda *args: calls.append(args) or relu(*args)
    out = be.to_numpy(be.gemm(be.asarray(a), be.asarray(w), be.asarray(bias),
                              activation="relu"))
    assert len(calls) == 1 and not any(key[0] == "fused_gemm" for key in be._primitives)
    assert_close(out, reference.gemm(a, w, bias, activation="relu"), k)


# -- the graph pass ---------------------------------------------------------------------------
F32 = TensorProto.FLOAT


def _gemm(name, x, k, n, rng, inits, trans_b=False):
    w = rng.standard_normal((n, k) if trans_b else (k, n)) / np.sqrt(k)
    inits += [(f"{name}_w", w.astype(np.float32)),
              (f"{name}_b", (rng.standard_normal(n) * 0.5).astype(np.float32))]
    return helper.make_node("Gemm", [x, f"{name}_w", f"{name}_b"], [name], name=name,
                            transB=int(trans_b))


def gemm_chain(rng, m=3, c=16):
    """Gemm → Relu, → Sigmoid (B transposed), → Clip(0, 6), → x·Sigmoid(x), → Tanh, near
    misses (a Gemm read by a Relu and an Add; HardSigmoid with ONNX's default alpha), and
    a Gemm whose Relu is the graph output (fused: its output stays the graph's)."""
    inits: list = [("zero", np.float32(0.0)), ("six", np.float32(6.0))]
    nodes = [
        _gemm("g1", "x", c, c, rng, inits),
        helper.make_node("Relu", ["g1"], ["a1"]),
        _gemm("g2", "a1", c, c, rng, inits, trans_b=True),
        helper.make_node("Sigmoid", ["g2"], ["a2"]),
        _gemm("g3", "a2", c, c, rng, inits),
        helper.make_node("Clip", ["g3", "zero", "six"], ["a3"]),
        _gemm("g4", "a3", c, c, rng, inits),
        helper.make_node("Sigmoid", ["g4"], ["s4"]),
        helper.make_node("Mul", ["g4", "s4"], ["a4"]),
        _gemm("m1", "a4", c, c, rng, inits),                           # read twice
        helper.make_node("Relu", ["m1"], ["b1"]),
        helper.make_node("Add", ["b1", "m1"], ["b2"]),
        _gemm("m2", "b2", c, c, rng, inits),
        helper.make_node("HardSigmoid", ["m2"], ["b3"]),               # alpha 0.2
        _gemm("g6", "b3", c, c, rng, inits),
        helper.make_node("Tanh", ["g6"], ["b4"]),
        _gemm("g5", "b4", c, c, rng, inits),
        helper.make_node("Relu", ["g5"], ["y"]),
    ]
    g = helper.make_graph(
        nodes, "gemms", [helper.make_tensor_value_info("x", F32, [m, c])],
        [helper.make_tensor_value_info("y", F32, [m, c])],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    return optimize(load_onnx(model)), {"x": rng.standard_normal((m, c)).astype(np.float32)}


def test_fuse_pass_finds_gemm_activations_and_skips_near_misses(rng):
    graph, _ = gemm_chain(rng)
    fused = fuse_gemm_activations(graph.copy())
    by_name = {n.name: n for n in fused.nodes if n.name}
    want = {"g1": "relu", "g2": "sigmoid", "g3": "relu6", "g4": "silu", "g5": "relu",
            "g6": "tanh"}
    for name, act in want.items():
        assert by_name[name].op_type == FUSED_GEMM, name
        assert by_name[name].attrs["activation"] == act, name
    assert by_name["g2"].attrs["transB"] == 1 and by_name["g5"].outputs == ["y"]
    assert by_name["m1"].op_type == "Gemm" and by_name["m2"].op_type == "Gemm"
    counts = fused.op_counts()
    assert counts[FUSED] == 6 and counts["Gemm"] == 2
    assert counts["Relu"] == 1 and counts["HardSigmoid"] == 1
    assert "Sigmoid" not in counts and "Tanh" not in counts
    assert graph.op_counts()["Relu"] == 3  # the pass worked on its copy only
    feeds = {"x": rng.standard_normal((3, 16)).astype(np.float32)}
    want = Executor(graph, ReferenceBackend()).run(feeds)  # float64 Gemm, then each op
    got = Executor(fused, ReferenceBackend()).run(feeds)  # gemm(..., activation=)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)


def test_fused_gemms_give_the_unfused_outputs(backend, rng):
    graph, feeds = gemm_chain(rng)
    want = Executor(graph, ReferenceBackend()).run(feeds)
    unfused = Executor(graph, backend).run(feeds)
    fused = Executor(fuse_gemm_activations(graph.copy()), backend).run(feeds)
    for got, ref in zip(fused, want, strict=True):
        assert_close(got, np.asarray(ref, np.float64), 16, backend=backend)
    if not backend.name.startswith("systolic"):  # it quantizes each GEMM's output
        for got, plain in zip(fused, unfused, strict=True):
            np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mlp", "autoencoder", "lenet"])
def test_small_models_run_their_dense_layers_fused(name, rng):
    model = hwbench.load_model(name)
    x = rng.standard_normal(model.graph.inputs[0].shape).astype(np.float32)
    fused = hwbench.Session(model, "cpu")
    plain = hwbench.Session(model, "cpu", fuse=False)
    counts = fused.graph.op_counts()
    assert counts[FUSED] == {"mlp": 1, "autoencoder": 4, "lenet": 2}[name]
    assert "Sigmoid" not in counts and "Relu" not in counts
    for _ in range(3):  # the traced run, then replays of the prepared matmul
        got, want = fused.run({model.graph.inputs[0].name: x}), \
            plain.run({model.graph.inputs[0].name: x})
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    ns = fused.executor.plan._fn.__globals__
    calls = [ns[k] for k in ns if k.startswith("K") and getattr(ns[k], "problem", None)
             and isinstance(ns[k].problem, spec.GemmProblem)]
    assert calls and all(c.fast() for c in calls)  # replayed as bound primitives
