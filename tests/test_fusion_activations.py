"""Activations fused into convolutions: ``conv2d(..., activation=)`` for every one of
``spec.ACTIVATIONS`` on every backend, and ``fuse_conv_epilogues`` finding them in graphs
(Clip(0, 6), Sigmoid, x·Sigmoid(x), HardSwish, HardSigmoid) and leaving near misses alone."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import ACTIVATED_QUANTIZED_TOL, assert_close, quantizes_float_math

from hwbench.backends import get_backend
from hwbench.backends.conv_epilogue import apply_activation
from hwbench.backends.cpu.primitives import ONEDNN_ACTIVATIONS
from hwbench.backends.reference import ReferenceBackend
from hwbench.errors import ArgumentError
from hwbench.graph import Executor, load_onnx, optimize
from hwbench.graph.ir import FUSED_CONV_QUALIFIED
from hwbench.graph.passes import fuse_conv_epilogues
from hwbench.kernels import reference, spec

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ACTS = list(spec.ACTIVATIONS)
# (n, c, h, w, k, r, stride, padding, groups): the cpu backend's pointwise GEMM path, a
# blocked 3x3 conv, a depthwise conv
CASES = {
    "pointwise-gemm": (2, 32, 12, 12, 48, 1, 1, 0, 1),
    "3x3": (2, 16, 9, 9, 32, 3, 1, 1, 1),
    "depthwise": (1, 16, 10, 10, 16, 3, 2, 1, 16),
    "grouped-pointwise": (1, 24, 12, 12, 112, 1, 1, 0, 4),
}


def test_every_activation_has_a_onednn_post_op():
    assert set(ONEDNN_ACTIVATIONS) == set(spec.ACTIVATIONS)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("with_residual", [False, True], ids=["plain", "residual"])
def test_conv2d_activation_matches_float64_reference(backend, rng, case, activation,
                                                     with_residual):
    n, c, h, w, k, r, stride, padding, groups = case
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c // groups, r, r)) * 0.5).astype(np.float32)
    bias = rng.standard_normal(k).astype(np.float32)
    kw = dict(stride=stride, padding=padding, groups=groups)
    shape = reference.conv2d(x, wt, bias, **kw).shape
    residual = rng.standard_normal(shape).astype(np.float32) if with_residual else None
    out = backend.to_numpy(backend.conv2d(
        backend.asarray(x), backend.asarray(wt), backend.asarray(bias),
        residual=None if residual is None else backend.asarray(residual),
        activation=activation, **kw))
    want = reference.conv2d(x, wt, bias, residual=residual, activation=activation, **kw)
    if quantizes_float_math(backend):  # tanh squashes the int8 conv's error's scale
        pre = reference.conv2d(x, wt, bias, residual=residual, **kw)
        assert np.max(np.abs(out - want)) / np.max(np.abs(pre)) <= ACTIVATED_QUANTIZED_TOL
    else:
        assert_close(out, want, c // groups * r * r, backend=backend)


@pytest.mark.parametrize("activation", ACTS)
def test_apply_activation_is_the_float64_activation(rng, activation):
    """The unfused path (the backend's own elementwise kernels) computes each activation."""
    be = get_backend("numpy")
    x = (rng.standard_normal((3, 5, 7)) * 8).astype(np.float32)
    got = be.to_numpy(apply_activation(be, be.asarray(x), activation))
    np.testing.assert_allclose(got, reference.activation64(x, activation), rtol=2e-6,
                               atol=2e-6)


def test_conv2d_refuses_an_unknown_activation():
    be = get_backend("numpy")
    x = np.zeros((1, 2, 4, 4), np.float32)
    w = np.zeros((2, 2, 1, 1), np.float32)
    with pytest.raises(ArgumentError, match="activation"):
        be.conv2d(x, w, activation="mish")


# -- the graph pass ---------------------------------------------------------------------------
F32 = TensorProto.FLOAT


def _conv(name, x, c, r, rng, inits, groups=1):
    w = (rng.standard_normal((c, c // groups, r, r)) / np.sqrt(c // groups * r * r))
    inits += [(f"{name}_w", (w * 2).astype(np.float32)),
              (f"{name}_b", (rng.standard_normal(c) * 0.5).astype(np.float32))]
    return helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [name], pads=[r // 2] * 4,
                            group=groups, name=name)


def activation_chain(rng, c=16, hw=10):
    """Each activation after a conv, then the near misses the pass must leave alone:
    Clip(0, 5), HardSigmoid with ONNX's default alpha, a Sigmoid whose output has a
    second reader, an Elu with alpha 0.5, a Clip with a run-time bound."""
    inits: list = [("zero", np.float32(0.0)), ("six", np.float32(6.0)),
                   ("five", np.float32(5.0))]
    nodes = [
        _conv("c1", "x", c, 3, rng, inits),
        helper.make_node("Clip", ["c1", "zero", "six"], ["a1"]),             # relu6
        _conv("c2", "a1", c, 3, rng, inits, groups=c),
        helper.make_node("HardSwish", ["c2"], ["a2"]),                       # hardswish
        _conv("c3", "a2", c, 1, rng, inits),
        helper.make_node("Sigmoid", ["c3"], ["s3"]),
        helper.make_node("Mul", ["s3", "c3"], ["a3"]),                       # silu
        _conv("c4", "a3", c, 3, rng, inits, groups=c),
        helper.make_node("HardSigmoid", ["c4"], ["a4"], alpha=1.0 / 6.0, beta=0.5),
        _conv("c5", "a4", c, 1, rng, inits),
        helper.make_node("Sigmoid", ["c5"], ["a5"]),                         # sigmoid
        _conv("c6", "a5", c, 3, rng, inits),
        helper.make_node("Add", ["c6", "a4"], ["r6"]),
        helper.make_node("Clip", ["r6", "zero"], ["a6"]),                    # relu (no max)
        _conv("c7", "a6", c, 3, rng, inits),
        helper.make_node("Elu", ["c7"], ["a7"]),                             # elu (alpha 1)
        # near misses
        _conv("m1", "a7", c, 1, rng, inits),
        helper.make_node("Clip", ["m1", "zero", "five"], ["b1"]),
        _conv("m2", "b1", c, 1, rng, inits),
        helper.make_node("HardSigmoid", ["m2"], ["b2"]),                     # alpha 0.2
        _conv("m3", "b2", c, 1, rng, inits),
        helper.make_node("Sigmoid", ["m3"], ["s9"]),
        helper.make_node("Mul", ["m3", "s9"], ["b3"]),
        helper.make_node("Add", ["b3", "s9"], ["b4"]),                       # s9 read twice
        _conv("m5", "b4", c, 1, rng, inits),
        helper.make_node("Elu", ["m5"], ["b5"], alpha=0.5),                  # another alpha
        _conv("m4", "b5", c, 1, rng, inits),
        helper.make_node("Clip", ["m4", "zero", "hi"], ["y"]),               # run-time max
    ]
    g = helper.make_graph(
        nodes, "activations",
        [helper.make_tensor_value_info("x", F32, [2, c, hw, hw]),
         helper.make_tensor_value_info("hi", F32, [])],
        [helper.make_tensor_value_info("y", F32, [2, c, hw, hw])],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    feeds = {"x": rng.standard_normal((2, c, hw, hw)).astype(np.float32),
             "hi": np.asarray(4.0, np.float32)}
    return optimize(load_onnx(model)), feeds


def test_fuse_pass_finds_every_activation_and_skips_near_misses(rng):
    graph, _ = activation_chain(rng)
    fused = fuse_conv_epilogues(graph.copy())
    by_name = {n.name: n for n in fused.nodes if n.name}
    want = {"c1": "relu6", "c2": "hardswish", "c3": "silu", "c4": "hardsigmoid",
            "c5": "sigmoid", "c6": "relu", "c7": "elu"}
    for name, act in want.items():
        assert by_name[name].op_type == "FusedConv", name
        assert by_name[name].attrs["activation"] == act, name
    assert by_name["c6"].inputs[3] == "a4"  # the shortcut Add went in too
    for name in ("m1", "m2", "m3", "m4", "m5"):
        assert by_name[name].op_type == "Conv", name
    counts, before = fused.op_counts(), graph.op_counts()
    assert counts[FUSED_CONV_QUALIFIED] == 7 and counts["Elu"] == 1
    assert counts["Clip"] == 2 and counts["HardSigmoid"] == 1 and counts["Mul"] == 1
    assert "HardSwish" not in counts and counts["Sigmoid"] == 1
    assert before["Sigmoid"] == 3 and before["Clip"] == 4


def test_fused_activations_give_the_unfused_outputs(backend, rng):
    graph, feeds = activation_chain(rng)
    want = Executor(graph, ReferenceBackend()).run(feeds)
    unfused = Executor(graph, backend).run(feeds)
    fused = Executor(fuse_conv_epilogues(graph.copy()), backend).run(feeds)
    for got, ref in zip(fused, want, strict=True):
        assert_close(got, np.asarray(ref, np.float64), 144, backend=backend)
    if not backend.name.startswith("systolic"):  # it quantizes each conv's output
        for got, plain in zip(fused, unfused, strict=True):
            np.testing.assert_allclose(got, plain, rtol=1e-4, atol=1e-4)
