"""The cpu backend's prepared kernels (``cpu/prepared_kernels.py``): what a compiled plan
replays for conv, gemm, eltwise, softmax, pooling, flatten and blocked mul/add gives the
normal path's outputs bit for bit, falls back to the kernel on arguments it was not built for, and
never hands out an array a later run overwrites."""

from __future__ import annotations

import numpy as np
import pytest
from plan_helpers import prepared, run_both, se_model

import hwbench
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC
from hwbench.models.sample_inputs import batch_feeds
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
_ok, _why = availability("cpu")
pytestmark = pytest.mark.skipif(not _ok, reason=f"cpu backend unavailable: {_why}")

# Op types whose kernel has a fast path.
FAST_OPS = {"FusedConv", "Conv", "Gemm", "FusedGemm", "Relu", "Sigmoid", "Softmax", "MaxPool",
            "Reshape"}


def tiny_cnn(path) -> hwbench.Model:
    """Conv+Relu, MaxPool, Conv, AveragePool in ceil mode counting padding (rescaled
    after the primitive: no fast path), Flatten, Gemm, Sigmoid, Softmax; outputs of
    more than the buffer pool's small size (pool buffers)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)

    def init(name, shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("AveragePool", ["c2"], ["p2"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1),
        helper.make_node("Flatten", ["p2"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["g"], transB=1),
        helper.make_node("Sigmoid", ["g"], ["s"]),
        helper.make_node("Softmax", ["s"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 10]),
         helper.make_tensor_value_info("p1", TensorProto.FLOAT, [2, 16, 32, 32])],
        [init("w1", (16, 3, 3, 3)), init("b1", (16,)), init("w2", (16, 16, 3, 3)),
         init("b2", (16,)), init("w3", (10, 16 * 17 * 17)), init("b3", (10,))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return hwbench.load_model(str(path))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", ["lenet", "mlp", "autoencoder"])
def test_fast_replay_is_the_normal_path_bit_for_bit(name, batch):
    model = hwbench.load_model(name, batch=batch)
    sess = hwbench.Session(model, "cpu", threads=2)
    for seed in range(3):  # the traced run, the run that builds the fast paths, one more
        run_both(sess, batch_feeds(model.graph, batch, seed=seed)[0])
    wanted = sum(step.node.op_type in FAST_OPS for step in sess.executor._steps)
    assert wanted and sum(k.fast() for k in prepared(sess)) >= wanted


def test_fast_and_plain_replays_agree_and_pooling_falls_back(tmp_path):
    model = tiny_cnn(tmp_path / "tiny.onnx")
    fast = hwbench.Session(model, "cpu", threads=2)
    plain = hwbench.Session(model, "cpu", threads=2)
    plain.executor.backend.fast_replay = False
    for seed in range(3):
        feeds = batch_feeds(model.graph, 2, seed=seed)[0]
        run_both(fast, feeds)
        for a, b in zip(fast.run(feeds), plain.run(feeds), strict=True):
            assert a.tobytes() == b.tobytes()
    assert not any(k.fast() for k in prepared(plain))
    kinds = {k.kernel.__name__: k.fast() for k in prepared(fast)}
    assert kinds["_conv2d"] and kinds["_gemm"] and kinds["_softmax"]  # Gemm+Sigmoid fused
    pools = [k for k in prepared(fast) if k.kernel.__name__ == "_pool"]
    assert [k.fast() for k in pools] == [True, False]


def test_outputs_are_fresh_arrays_on_every_run(tmp_path):
    model = tiny_cnn(tmp_path / "tiny.onnx")  # a 128 KiB output: from the buffer pool
    sess = hwbench.Session(model, "cpu", threads=2)
    runs = [sess.run(batch_feeds(model.graph, 2, seed=s)[0]) for s in range(4)]
    kept = [[a.copy() for a in outs] for outs in runs]
    more = sess.run(batch_feeds(model.graph, 2, seed=9)[0])
    for outs, copies in zip(runs, kept, strict=True):
        for a, b, c in zip(outs, copies, more, strict=True):
            assert np.array_equal(a, b) and not np.shares_memory(a, c)


@pytest.mark.parametrize("fuse", [False, True], ids=["gemm-then-sigmoid", "fused-gemm"])
def test_arguments_a_fast_path_was_not_built_for_run_the_kernel(fuse):
    model = hwbench.load_model("mlp", batch=4)
    sess = hwbench.Session(model, "cpu", threads=2, fuse=fuse)
    feeds = batch_feeds(model.graph, 4, seed=0)[0]
    sess.run(feeds)
    sess.run(feeds)
    gemm = next(k for k in prepared(sess) if k.kernel.__name__ == "_gemm" and k.fast())
    w_name, b_name = sess.executor._steps[1].node.inputs[1:3]
    w, b = sess.executor._weights[w_name], sess.executor._weights[b_name]
    p = gemm.problem
    rng = np.random.default_rng(1)
    a = rng.standard_normal((p.m, p.k), dtype=np.float32)
    act = {"activation": "sigmoid"} if fuse else {}
    for odd in (np.asfortranarray(a), a[:, ::-1].copy()[:, ::-1]):  # F order, negative strides
        got = gemm(odd, w, b, **act)
        want = gemm.kernel(p, odd, w, b, **act)
        assert got.tobytes() == want.tobytes()
    assert gemm.fast()
    if fuse:
        return
    relu = next(k for k in prepared(sess) if k.kernel.__name__ == "_sigmoid")
    x = np.asfortranarray(rng.standard_normal(relu.problem.shape, dtype=np.float32))
    assert relu(x).tobytes() == relu.kernel(relu.problem, x).tobytes()


def test_a_bound_primitive_refuses_unbound_or_short_arguments():
    from hwbench.backends.cpu.backend import CpuBackend
    from hwbench.backends.cpu.bound_primitive import BoundPrimitive
    from hwbench.backends.cpu.primitives import build_eltwise

    be = CpuBackend()
    prim = build_eltwise(be.dnnl, "eltwise_relu", 64)
    with pytest.raises(AssertionError, match="not all bound"):
        BoundPrimitive(prim, {}, (ARG_SRC,))
    with pytest.raises(AssertionError, match="byte"):
        BoundPrimitive(prim, {ARG_SRC: np.zeros(8, np.float32)}, (ARG_DST,))
    x = np.linspace(-1, 1, 64, dtype=np.float32)
    assert be.dnnl.blocking  # the GOMP build: execute returns when done, no wait
    waits = []
    try:  # an asynchronous stream's runner waits after each execute
        be.dnnl.blocking = False
        lib = be.dnnl.lib
        wait = lib.dnnl_stream_wait
        lib.dnnl_stream_wait = lambda stream: waits.append(stream) or wait(stream)
        runs = [BoundPrimitive(prim, {}, (ARG_SRC, ARG_DST)).runner()]
    finally:
        be.dnnl.blocking = True
        lib.dnnl_stream_wait = wait
    runs.append(BoundPrimitive(prim, {}, (ARG_SRC, ARG_DST)).runner())
    for run in runs:
        out = np.empty_like(x)
        run(x.ctypes.data, out.ctypes.data)
        assert np.array_equal(out, np.maximum(x, 0))
    assert len(waits) == 1


def test_blocked_mul_and_add_replay_bit_for_bit(tmp_path):
    """A squeeze-and-excitation gate (GlobalAveragePool, Conv, Sigmoid) multiplied into a
    blocked activation from either side, and the two products added: each Mul and the
    Add replays the binary primitive directly (a fast path), as the kernel computed."""
    model = se_model(tmp_path / "se.onnx", [("Mul", ["g", "c1"], ["m2"]),
                                            ("Add", ["m", "m2"], ["y"])], out_channels=40)
    sess = hwbench.Session(model, "cpu", threads=1)
    for seed in range(3):
        run_both(sess, batch_feeds(model.graph, 1, seed=seed)[0])
    kinds = [(k.kernel.__name__, k.fast()) for k in prepared(sess)]
    assert [k for k in kinds if k[0] in ("_mul", "_add")] == [
        ("_mul", True), ("_mul", True), ("_add", True)]


def test_a_blocked_shortcut_replays_on_the_fast_path(tmp_path):
    """Conv → Relu → Conv + shortcut → Relu (a residual block; the pass fuses the add
    and relu into the second conv, whose shortcut the primitive reads in place): both
    convs replay bound, bit for bit, at batch 1 and 2."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)

    def init(name, shape):
        return numpy_helper.from_array(
            (rng.standard_normal(shape) / 6).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r0"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "residual",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 32, 12, 12])],
        [init("w0", (32, 3, 3, 3)), init("b0", (32,)), init("w1", (32, 32, 3, 3)),
         init("b1", (32,)), init("w2", (32, 32, 3, 3)), init("b2", (32,))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "residual.onnx"))
    for batch in (1, 2):
        model = hwbench.load_model(str(tmp_path / "residual.onnx"), batch=batch)
        sess = hwbench.Session(model, "cpu", threads=1)
        for seed in range(3):
            run_both(sess, batch_feeds(model.graph, batch, seed=seed)[0])
        convs = [k.fast() for k in prepared(sess) if k.kernel.__name__ == "_conv2d"]
        assert convs == [True, True, True]


def test_a_plan_sets_the_thread_count_once_per_run_of_equal_counts(tmp_path, monkeypatch):
    """A Gemm big enough for 2 threads between small kernels on 1: each kernel runs with
    its own count (libgomp's and the primitive cache's), and the plan tells them only
    where the count changes (``call.enter``), not before every call. (The plan's replay:
    the chained run is off here; ``test_graph_chain.py`` checks its counts.)"""
    import re

    from onnx import TensorProto, helper, numpy_helper

    from hwbench.graph import chain, step_chain

    monkeypatch.setattr(chain, "CHAIN_MAX_BYTES", 0)
    monkeypatch.setattr(step_chain, "STEP_CHAIN_MAX_BYTES", 0)

    rng = np.random.default_rng(3)
    inits = {"w1": (512, 512), "b1": (512,), "w2": (512, 8), "w3": (8, 512)}
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["g1"]),   # 33.6 MFLOP: 2 threads
             helper.make_node("Relu", ["g1"], ["r1"]),
             helper.make_node("Gemm", ["r1", "w2"], ["g2"]),          # small: 1 thread
             helper.make_node("Softmax", ["g2"], ["s2"], axis=1),
             helper.make_node("Gemm", ["s2", "w3"], ["y"])]           # small: 1 thread
    graph = helper.make_graph(
        nodes, "threads", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 512])],
        [numpy_helper.from_array((rng.standard_normal(s) / 20).astype(np.float32), n)
         for n, s in inits.items()])
    path = tmp_path / "threads.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)
    model = hwbench.load_model(str(path))
    sess = hwbench.Session(model, "cpu", threads=2)
    be = sess.backend
    feeds = {"x": rng.standard_normal((64, 512), dtype=np.float32)}
    sess.run(feeds)
    sess.run(feeds)  # the fast paths built
    calls = [k for k in prepared(sess) if hasattr(k, "enter")]
    counts = [be.threads_for(k.problem) for k in calls]
    assert counts == [2, 1, 1, 1]  # Gemm+Relu (fused), Gemm, Softmax, Gemm
    assert len(re.findall(r"^    EK\d+\(\)$", sess.executor.plan.source, re.M)) == 2
    seen = []
    for k in calls:
        inner = k.impl[0]

        def spy(*args, _inner=inner, _k=k, **kwargs):
            seen.append((be._threads_now, be.dnnl._threads_set[0], be.threads_for(_k.problem)))
            return _inner(*args, **kwargs)
        k.impl[0] = spy
    for seed in range(2):
        run_both(sess, {"x": np.random.default_rng(seed).standard_normal((64, 512),
                                                                         dtype=np.float32)})
    assert len(seen) == 8 and all(now == omp == want for now, omp, want in seen)
