"""Fused convolution epilogues: ``conv2d(..., residual=, activation=)`` on every backend,
the ``fuse_conv_epilogues`` graph pass, and the cpu backend's buffer pool."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_close

from hwbench.backends import get_backend
from hwbench.backends.cpu import BufferPool
from hwbench.backends.reference import ReferenceBackend
from hwbench.graph import Executor, load_onnx, optimize
from hwbench.graph.ir import FUSED_CONV_QUALIFIED
from hwbench.graph.passes import fuse_conv_epilogues
from hwbench.kernels import reference

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

# (n, c, h, w, k, r, stride, padding, groups): each of the cpu backend's paths
CONV_CASES = {
    "pointwise-gemm": (2, 32, 12, 12, 48, 1, 1, 0, 1),     # 1x1 on >= 128 px: sgemm per image
    "pointwise-small": (2, 32, 7, 7, 64, 1, 1, 0, 1),      # 1x1 on 49 px: conv primitive
    "3x3-blocked": (2, 32, 9, 9, 32, 3, 1, 1, 1),          # nChw16c: residual reordered in
    "3x3-strided": (1, 16, 10, 10, 32, 3, 2, 1, 1),
    "odd-channels": (2, 3, 8, 8, 5, 3, 1, 1, 1),           # oneDNN picks the layout
    "grouped": (1, 8, 6, 6, 8, 3, 1, 1, 4),
    "grouped-pointwise": (2, 12, 12, 12, 24, 1, 1, 0, 4),  # 3 in/6 out per group: a GEMM each
}


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("with_residual", [False, True], ids=["no-residual", "residual"])
@pytest.mark.parametrize("with_bias", [False, True], ids=["no-bias", "bias"])
def test_conv2d_fused_epilogue_matches_float64_reference(backend, rng, case, activation,
                                                         with_residual, with_bias):
    n, c, h, w, k, r, stride, padding, groups = case
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c // groups, r, r)).astype(np.float32)
    bias = rng.standard_normal(k).astype(np.float32) if with_bias else None
    kw = dict(stride=stride, padding=padding, groups=groups)
    plain = reference.conv2d(x, wt, bias, **kw)
    residual = rng.standard_normal(plain.shape).astype(np.float32) if with_residual else None
    args = [backend.asarray(x), backend.asarray(wt)]
    if bias is not None:
        args.append(backend.asarray(bias))
    dev_res = None if residual is None else backend.asarray(residual)
    out = backend.to_numpy(backend.conv2d(*args, residual=dev_res, activation=activation, **kw))
    want = reference.conv2d(x, wt, bias, residual=residual, activation=activation, **kw)
    assert_close(out, want, c // groups * r * r, backend=backend)
    if activation == "relu":
        assert (out >= 0).all()
    if residual is not None:  # the shortcut is read, never written
        np.testing.assert_array_equal(backend.to_numpy(dev_res), residual)


def test_conv2d_fused_epilogue_repeated_calls_stay_correct(backend, rng):
    """Cached primitives with post-ops (and pooled buffers) see each call's residual."""
    x = backend.asarray(rng.standard_normal((2, 16, 12, 12)).astype(np.float32))
    wt = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    w_dev = backend.asarray(wt)
    for _ in range(3):
        res = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
        out = backend.to_numpy(backend.conv2d(x, w_dev, padding=1,
                                              residual=backend.asarray(res),
                                              activation="relu"))
        want = reference.conv2d(backend.to_numpy(x), wt, padding=1, residual=res,
                                activation="relu")
        assert_close(out, want, 144, backend=backend)


# -- the graph pass ---------------------------------------------------------------------------
F32 = TensorProto.FLOAT


def _conv(name, x, c_in, c_out, r, rng, inits, out=None):
    w = (rng.standard_normal((c_out, c_in, r, r)) / np.sqrt(c_in * r * r)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32) * 0.1
    inits += [(f"{name}_w", w), (f"{name}_b", b)]
    return helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [out or name],
                            pads=[r // 2] * 4, name=name)


def _graph(nodes, inputs, outputs, inits):
    g = helper.make_graph(
        nodes, "fusion",
        [helper.make_tensor_value_info(n, F32, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, F32, s) for n, s in outputs],
        [numpy_helper.from_array(a, n) for n, a in inits])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    return optimize(load_onnx(model))


def residual_block(rng, c=16, hw=12):
    """A ResNet basic block plus the cases the pass must leave alone:
    conv → relu → conv → add(shortcut) → relu; a conv read twice; a conv whose output is a
    graph output; an Add that broadcasts; an Add of two convs."""
    inits: list = []
    nodes = [
        _conv("c1", "x", c, c, 3, rng, inits),
        helper.make_node("Relu", ["c1"], ["r1"]),
        _conv("c2", "r1", c, c, 3, rng, inits),
        helper.make_node("Add", ["c2", "x"], ["a2"]),
        helper.make_node("Relu", ["a2"], ["r2"]),
        _conv("c3", "r2", c, c, 1, rng, inits),           # read by Relu and by Add below
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("Add", ["c3", "r3"], ["a3"]),
        _conv("c4", "a3", c, c, 1, rng, inits),           # graph output: stays a Conv
        helper.make_node("Relu", ["c4"], ["r4"]),
        _conv("c5", "r4", c, c, 3, rng, inits),
        helper.make_node("Add", ["c5", "scale"], ["a5"]),  # broadcasts: not fused
        _conv("c6", "a5", c, c, 1, rng, inits),
        _conv("c7", "a5", c, c, 3, rng, inits),
        helper.make_node("Add", ["c6", "c7"], ["a7"]),     # two convs: one takes the Add
        helper.make_node("Relu", ["a7"], ["y"]),
    ]
    inputs = [("x", [2, c, hw, hw]), ("scale", [1, c, 1, 1])]
    outputs = [("y", [2, c, hw, hw]), ("c4", [2, c, hw, hw])]
    feeds = {"x": rng.standard_normal((2, c, hw, hw)).astype(np.float32),
             "scale": rng.standard_normal((1, c, 1, 1)).astype(np.float32)}
    return _graph(nodes, inputs, outputs, inits), feeds


def test_fuse_pass_fuses_only_what_is_safe(rng):
    graph, _ = residual_block(rng)
    fused = fuse_conv_epilogues(graph.copy())
    counts = fused.op_counts()
    kinds = {n.name or n.outputs[0]: n for n in fused.nodes}
    assert kinds["c1"].attrs.get("activation") == "relu" and kinds["c1"].inputs[3] == ""
    assert kinds["c2"].inputs[3] == "x" and kinds["c2"].attrs["activation"] == "relu"
    assert kinds["c3"].op_type == "Conv"          # two readers
    assert kinds["c4"].op_type == "Conv"          # a graph output
    assert kinds["c5"].op_type == "Conv"          # its Add broadcasts
    fused_add = [n for n in fused.nodes if n.name in ("c6", "c7") and n.op_type != "Conv"]
    assert len(fused_add) == 1 and fused_add[0].outputs == ["y"]
    assert counts[FUSED_CONV_QUALIFIED] == 3
    assert counts["Relu"] == 2 and counts["Add"] == 2   # r3, r4; a3, a5


@pytest.mark.parametrize("name", ["numpy", "cpu"])
def test_fused_graph_gives_the_unfused_outputs(rng, name):
    be = get_backend(name)
    graph, feeds = residual_block(rng)
    want = Executor(graph, be).run(feeds)
    got = Executor(fuse_conv_epilogues(graph.copy()), be).run(feeds)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_fused_graph_matches_the_float64_reference_backend(rng):
    graph, feeds = residual_block(rng)
    fused = fuse_conv_epilogues(graph.copy())
    want = Executor(graph, ReferenceBackend()).run(feeds)
    got = Executor(fused, get_backend("cpu")).run(feeds)
    for g, w in zip(got, want, strict=True):
        assert_close(g, np.asarray(w, np.float64), 144)


def test_fused_graph_is_refused_by_the_onnx_importer_check(rng):
    """FusedConv is hwbench's own op: not one an imported model may contain."""
    from hwbench.graph.ops import OP_DEFS

    assert "FusedConv" not in OP_DEFS.supported()
    assert FUSED_CONV_QUALIFIED not in OP_DEFS.supported()


# -- the cpu backend's buffer pool ------------------------------------------------------------
def test_buffer_pool_reuses_only_buffers_nobody_holds():
    pool = BufferPool()
    a = pool.empty((256, 1024))
    address = a.ctypes.data
    view = a[3:]
    del a
    b = pool.empty((256, 1024))
    assert b.ctypes.data != address            # a view still holds the first buffer
    del view
    c = pool.empty((1024, 256))                # same bytes, another shape
    assert c.ctypes.data == address and c.shape == (1024, 256)
    assert c.ctypes.data % 64 == 0
    assert pool.nbytes == 2 * 256 * 1024 * 4
    small = pool.empty((4, 4))
    assert small.shape == (4, 4) and pool.nbytes == 2 * 256 * 1024 * 4
    del b, c, small


def test_cpu_outputs_kept_by_the_caller_are_never_overwritten(rng):
    be = get_backend("cpu")
    x = rng.standard_normal((64, 256)).astype(np.float32)
    first = be.relu(be.asarray(x))
    snapshot = first.copy()
    for _ in range(3):
        be.relu(be.asarray(-x))
    np.testing.assert_array_equal(first, snapshot)


# -- the cpu backend's blocked activations (keep_blocked=True) --------------------------------
def _blocked_backend(**kw):
    return get_backend("cpu", keep_blocked=True, **kw)


def test_keep_blocked_chain_matches_float64_reference(rng):
    """conv → conv(+blocked shortcut, relu) → 1x1 → every consumer kind, against float64."""
    from hwbench.backends.cpu import BlockedArray

    be = _blocked_backend()
    x = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    w1, w2 = (rng.standard_normal((32, c, 3, 3)).astype(np.float32) / 12 for c in (16, 32))
    w3 = rng.standard_normal((32, 32, 1, 1)).astype(np.float32) / 6
    b3 = rng.standard_normal(32).astype(np.float32)
    y1 = be.conv2d(be.asarray(x), be.asarray(w1), padding=1)
    assert isinstance(y1, BlockedArray) and y1.shape == (2, 32, 12, 12)
    assert y1.dtype == np.float32 and y1.ndim == 4
    y2 = be.conv2d(y1, be.asarray(w2), padding=1, residual=y1, activation="relu")
    y3 = be.conv2d(y2, be.asarray(w3), be.asarray(b3), residual=be.to_numpy(y1))
    assert isinstance(y2, BlockedArray) and isinstance(y3, BlockedArray)
    r1 = reference.conv2d(x, w1, padding=1)
    r2 = reference.conv2d(r1, w2, padding=1, residual=r1, activation="relu")
    r3 = reference.conv2d(r2, w3, b3, residual=r1)
    assert_close(be.to_numpy(y1), r1, 144)
    assert_close(be.to_numpy(y2), r2, 288)
    assert_close(be.to_numpy(y3), r3, 288)
    # every other kernel reads a blocked input as its NCHW values
    assert_close(be.to_numpy(be.relu(y3)), np.maximum(r3, 0), 288)
    assert_close(be.to_numpy(be.add(y3, y1)), r3 + r1, 288)
    assert_close(be.to_numpy(be.max_pool2d(y3, (2, 2), stride=2)),
                 reference.max_pool2d(r3, (2, 2), stride=2), 288)
    assert_close(be.to_numpy(be.global_avg_pool2d(y3)), r3.mean(axis=(2, 3), keepdims=True), 288)
    assert_close(be.to_numpy(be.concat([y3, y1], axis=1)), np.concatenate([r3, r1], 1), 288)
    flat = be.reshape(y3, (2, -1))
    assert_close(be.to_numpy(be.gemm(flat, be.asarray(np.eye(flat.shape[1], 3, dtype=np.float32)))),
                 r3.reshape(2, -1)[:, :3], 288)
    # a layout oneDNN must choose itself (channels not a multiple of 16) takes it as NCHW
    w4 = rng.standard_normal((5, 32, 3, 3)).astype(np.float32)
    y4 = be.conv2d(y3, be.asarray(w4), padding=1)
    assert_close(be.to_numpy(y4), reference.conv2d(r3, w4, padding=1), 288)


def test_keep_blocked_is_off_for_direct_kernel_calls(rng):
    be = get_backend("cpu")
    x = be.asarray(rng.standard_normal((1, 16, 8, 8)).astype(np.float32))
    out = be.conv2d(x, be.asarray(rng.standard_normal((16, 16, 3, 3)).astype(np.float32)))
    assert isinstance(out, np.ndarray)


def test_blocked_array_is_screened_by_its_values_not_its_padding(rng):
    """NaN screening reads a blocked array's NCHW values (never the layout's padding)."""
    from hwbench.errors import ArgumentError

    be = _blocked_backend(check_finite=True)
    x = rng.standard_normal((1, 16, 6, 6)).astype(np.float32)
    y = be.conv2d(be.asarray(x), be.asarray(np.ones((16, 16, 3, 3), np.float32)), padding=1)
    assert type(y).__name__ == "BlockedArray"
    assert be.relu(y).shape == (1, 16, 6, 6)  # finite: passes the screen
    x[0, 3, 2, 2] = np.nan
    bad = be.conv2d(be.asarray(np.nan_to_num(x)), be.asarray(np.ones((16, 16, 3, 3), np.float32)),
                    padding=1)
    unchecked = _blocked_backend(check_finite=False)
    poisoned = unchecked.conv2d(unchecked.asarray(x),
                                unchecked.asarray(np.ones((16, 16, 3, 3), np.float32)), padding=1)
    with pytest.raises(ArgumentError, match="'x'"):
        be.relu(poisoned)
    assert np.isfinite(be.to_numpy(be.relu(bad))).all()


def test_session_on_cpu_keeps_blocked_and_matches_plain(rng):
    import hwbench

    graph, feeds = residual_block(rng)
    want = Executor(graph, get_backend("cpu")).run(feeds)
    got = Executor(fuse_conv_epilogues(graph.copy()), _blocked_backend()).run(feeds)
    for g, w in zip(got, want, strict=True):
        assert isinstance(g, np.ndarray)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    sess = hwbench.Session("lenet", backend="cpu")
    assert sess.backend.keep_blocked
    assert not hwbench.Session("lenet", backend="cpu", keep_blocked=False).backend.keep_blocked
