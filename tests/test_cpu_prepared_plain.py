"""The cpu backend's prepared plain-array kernels (``cpu/prepared_plain.py``): batched
MatMul, Add/Mul with a broadcast operand (either side, or both: NumPy's), Concat (NumPy's
below oneDNN's size, the primitive above) replay the normal path's outputs bit for bit,
and arguments they were not built for run the kernel (its answers, its errors)."""

from __future__ import annotations

import numpy as np
import pytest
from plan_helpers import prepared, run_both

import hwbench
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
_ok, _why = availability("cpu")
pytestmark = pytest.mark.skipif(not _ok, reason=f"cpu backend unavailable: {_why}")


def feeds(seed: int) -> dict:
    """Random inputs of ``plain_ops``' shapes."""
    rng = np.random.default_rng(seed)
    shapes = {"x": (2, 3, 5), "k": (2, 5, 4), "col": (2, 3, 1), "big": (512, 512)}
    return {n: rng.standard_normal(s, dtype=np.float32) for n, s in shapes.items()}


def plain_ops(path) -> hwbench.Model:
    """Batched MatMul (a broadcast batch too), Add with the broadcast operand second and
    first, Mul broadcasting both sides (NumPy's), a small and a 2 MiB Concat, a 1 MiB Add
    (the primitive; the small ones are NumPy's ufunc)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)

    def init(name, shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    node = helper.make_node
    nodes = [
        node("MatMul", ["x", "k"], ["s"]),             # (2, 3, 5) @ (2, 4, 5)^T... (2,3,4)
        node("MatMul", ["s", "w"], ["t"]),             # (2, 3, 4) @ (4, 6): B broadcast
        node("Add", ["t", "bias"], ["u"]),             # + (6,)
        node("Add", ["bias", "u"], ["v"]),             # (6,) + : the full operand second
        node("Mul", ["col", "row"], ["g"]),            # (2, 3, 1) * (1, 1, 6): both broadcast
        node("Mul", ["v", "g"], ["y"]),
        node("Concat", ["y", "t"], ["z"], axis=2),     # small: NumPy
        node("Concat", ["big", "big"], ["zz"], axis=0),  # 2 x 1 MiB: the primitive
        node("Add", ["big", "wide"], ["bb"]),          # 1 MiB + (512,): the primitive
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "plain_ops",
        [value("x", TensorProto.FLOAT, [2, 3, 5]), value("k", TensorProto.FLOAT, [2, 5, 4]),
         value("col", TensorProto.FLOAT, [2, 3, 1]), value("big", TensorProto.FLOAT, [512, 512])],
        [value("z", TensorProto.FLOAT, [2, 3, 12]), value("zz", TensorProto.FLOAT, [1024, 512]),
         value("bb", TensorProto.FLOAT, [512, 512])],
        [init("w", (4, 6)), init("bias", (6,)), init("row", (1, 1, 6)), init("wide", (512,))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return hwbench.load_model(str(path))


def test_plain_ops_replay_bit_for_bit_on_the_fast_path(tmp_path):
    model = plain_ops(tmp_path / "plain.onnx")
    sess = hwbench.Session(model, "cpu", threads=1, fuse=False)
    for seed in range(3):  # the traced run, the run that builds the fast paths, one more
        run_both(sess, feeds(seed))
    kinds = [(k.kernel.__name__, k.fast()) for k in prepared(sess)]
    assert kinds == [("_matmul", True), ("_matmul", True), ("_add", True), ("_add", True),
                     ("_mul", True), ("_mul", True), ("_concat", True), ("_concat", True),
                     ("_add", True)]
    adds = [k.impl[0].__name__ for k in prepared(sess) if k.kernel.__name__ == "_add"]
    assert adds == ["numpy_call", "numpy_call", "call"]  # below UFUNC_MAX_BYTES: NumPy
    matmuls = [k.impl[0].__name__ for k in prepared(sess) if k.kernel.__name__ == "_matmul"]
    assert matmuls == ["numpy_call", "numpy_call"]  # below NUMPY_MATMUL_MAX_MACS: NumPy


def test_matmul_above_the_numpy_size_replays_the_bound_primitive(tmp_path):
    """A batched MatMul past ``NUMPY_MATMUL_MAX_MACS`` (attention's (B,1,32)x(B,32,32)
    is below it) stays on the matmul primitive, bound; both agree with the normal path."""
    from onnx import TensorProto, helper

    from hwbench.backends.cpu.reductions import NUMPY_MATMUL_MAX_MACS

    assert 8 * 1 * 32 * 32 <= NUMPY_MATMUL_MAX_MACS < 4 * 64 * 64 * 64
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])], "big_matmul",
        [value("a", TensorProto.FLOAT, [4, 64, 64]), value("b", TensorProto.FLOAT, [4, 64, 64])],
        [value("y", TensorProto.FLOAT, [4, 64, 64])])
    path = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    sess = hwbench.Session(hwbench.load_model(str(path)), "cpu", threads=1)
    rng = np.random.default_rng(3)
    for _ in range(3):
        run_both(sess, {n: rng.standard_normal((4, 64, 64), dtype=np.float32) for n in "ab"})
    assert [k.impl[0].__name__ for k in prepared(sess)] == ["call"]


def test_outputs_are_fresh_arrays_on_every_run(tmp_path):
    model = plain_ops(tmp_path / "plain.onnx")
    sess = hwbench.Session(model, "cpu", threads=1, fuse=False)
    runs = [sess.run(feeds(s)) for s in range(6)]
    kept = [[a.copy() for a in outs] for outs in runs]
    more = sess.run(feeds(9))
    for outs, copies in zip(runs, kept, strict=True):
        for a, b, c in zip(outs, copies, more, strict=True):
            assert np.array_equal(a, b) and not np.shares_memory(a, c)


def test_arguments_a_fast_path_was_not_built_for_run_the_kernel(tmp_path):
    model = plain_ops(tmp_path / "plain.onnx")
    sess = hwbench.Session(model, "cpu", threads=1, fuse=False)
    for seed in range(2):
        sess.run(feeds(seed))
    calls = prepared(sess)
    rng = np.random.default_rng(2)
    mm, add, concat = calls[0], calls[2], calls[6]
    assert mm.fast() and add.fast() and concat.fast()
    x = np.asfortranarray(rng.standard_normal((2, 3, 5), dtype=np.float32))
    k = rng.standard_normal((2, 5, 4), dtype=np.float32)
    assert mm(x, k).tobytes() == mm.kernel(mm.problem, x, k).tobytes()
    t = rng.standard_normal((2, 3, 6)).astype(np.float32)[:, :, ::-1]  # negative strides
    bias = rng.standard_normal(6, dtype=np.float32)
    assert add(t, bias).tobytes() == add.kernel(add.problem, t, bias).tobytes()
    y, t2 = (rng.standard_normal((2, 3, n), dtype=np.float32) for n in (6, 6))
    parts = [y, np.asfortranarray(t2)]
    assert concat(parts).tobytes() == concat.kernel(concat.problem, parts).tobytes()
    for fn, bad in ((mm, (x, k[:, :4])), (add, (t, bias[:5]))):  # the kernel's own error
        with pytest.raises(Exception) as want:
            fn.kernel(fn.problem, *bad)
        with pytest.raises(type(want.value)):
            fn(*bad)
    assert mm.fast() and add.fast()


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_a_one_primitive_rnn_replays_bit_for_bit(tmp_path, cell):
    """LSTM/GRU over 3 steps from given states (the primitive bound to the converted
    weights): Y, Y_h (Y_c) as the kernel's; a run with a zero initial state array too."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(4)
    gates, hidden, size = (4 if cell == "LSTM" else 3), 8, 5

    def init(name, shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    lstm = cell == "LSTM"
    ins = ["x", "W", "R", "B", "", "h0"] + (["c0"] if lstm else [])
    outs = ["y", "yh"] + (["yc"] if lstm else [])
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node(cell, ins, outs, hidden_size=hidden)], "rnn",
        [value("x", TensorProto.FLOAT, [3, 2, size]),
         value("h0", TensorProto.FLOAT, [1, 2, hidden])]
        + ([value("c0", TensorProto.FLOAT, [1, 2, hidden])] if lstm else []),
        [value("y", TensorProto.FLOAT, [3, 1, 2, hidden])]
        + [value(o, TensorProto.FLOAT, [1, 2, hidden]) for o in outs[1:]],
        [init("W", (1, gates * hidden, size)), init("R", (1, gates * hidden, hidden)),
         init("B", (1, 2 * gates * hidden))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "rnn.onnx"))
    model = hwbench.load_model(str(tmp_path / "rnn.onnx"))
    sess = hwbench.Session(model, "cpu", threads=1)
    for seed in range(4):
        r = np.random.default_rng(seed)
        run_both(sess, {v.name: r.standard_normal(v.shape, dtype=np.float32)
                        for v in model.graph.inputs})
    assert [(k.kernel.__name__, k.fast()) for k in prepared(sess)] == [("_rnn", True)]


def test_the_translator_step_replays_bit_for_bit_and_fast():
    """The translator's decoder step (LSTM, MatMul, Add, Softmax, Concat, Gemm): every
    kernel call on a fast path, and Gather (its indices checked on the host each run)
    replayed by ``_prepared_step``."""
    from hwbench.datasets import dates
    from hwbench.harness.suites.translator_suite import case_models
    from hwbench.models.translator import export

    encoder_model, step_model = case_models(1)
    encoder = hwbench.Session(encoder_model, "cpu", threads=1)
    step = hwbench.Session(step_model, "cpu", threads=1)
    states, keys_t, h = encoder.run(export.source_feeds(["march 3, 2014"], 32))
    c = np.zeros_like(h)
    previous = np.full(1, dates.EOS, np.int64)
    mask = np.zeros((1, 32), np.float32)
    for _ in range(4):
        feeds = {"previous": previous, "h": h, "c": c, "states": states, "keys_t": keys_t,
                 "mask": mask}
        run_both(step, feeds)
        logits, h, c = step.run(feeds)
        previous = logits.argmax(axis=1).astype(np.int64)
    assert all(k.fast() for k in prepared(step))
    assert step.executor.plan.prepared_steps == len(step.executor._steps)
    assert "= H0(W0, f0)" in step.executor.plan.source  # the Gather of 'previous'


def test_a_transpose_replays_bit_for_bit_and_falls_back(tmp_path):
    """Attention's head split (0, 2, 1, 3) on the fast path; a non-contiguous input
    runs the kernel, with its answer, and so does a frozen one (a feed's)."""
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]),  # a feed is frozen: the kernel's path
         helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 1, 3])], "transpose",
        [value("x", TensorProto.FLOAT, [1, 5, 3, 4])],
        [value("y", TensorProto.FLOAT, [1, 3, 5, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "t.onnx"))
    sess = hwbench.Session(hwbench.load_model(str(tmp_path / "t.onnx")), "cpu", threads=1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        run_both(sess, {"x": rng.standard_normal((1, 5, 3, 4), dtype=np.float32)})
    relu, call = prepared(sess)
    assert call.fast()
    odd = rng.standard_normal((1, 5, 4, 3), dtype=np.float32).transpose(0, 1, 3, 2)
    assert call(odd).tobytes() == call.kernel(call.problem, odd).tobytes()
    assert np.array_equal(call(odd), np.transpose(odd, (0, 2, 1, 3)))
    feed = sess.executor.backend.frozen.freeze(np.ones((1, 5, 3, 4), np.float32))
    assert call(feed) is call.kernel(call.problem, feed)  # the frozen copy kept with it


def test_unary_eltwise_ops_replay_bit_for_bit(tmp_path):
    """Elu (an alpha), Tanh and Exp on the bound primitive; Sin (no oneDNN algorithm)
    keeps the kernel's NumPy path; a non-contiguous input runs the kernel."""
    from onnx import TensorProto, helper

    node = helper.make_node
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [node("Elu", ["x"], ["a"], alpha=0.5), node("Tanh", ["a"], ["b"]),
         node("Exp", ["b"], ["c"]), node("Sin", ["c"], ["y"])], "unary",
        [value("x", TensorProto.FLOAT, [2, 3, 7])], [value("y", TensorProto.FLOAT, [2, 3, 7])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "u.onnx"))
    sess = hwbench.Session(hwbench.load_model(str(tmp_path / "u.onnx")), "cpu", threads=1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        run_both(sess, {"x": rng.standard_normal((2, 3, 7), dtype=np.float32)})
    calls = prepared(sess)
    assert [k.fast() for k in calls] == [True, True, True, False]
    odd = rng.standard_normal((2, 7, 3), dtype=np.float32).transpose(0, 2, 1)
    tanh = calls[1]
    assert tanh(odd).tobytes() == tanh.kernel(tanh.problem, odd).tobytes()


def test_the_translator_encoder_replays_its_lstm_on_the_traced_lengths():
    """The encoder's LSTM reads its sequence lengths on the host: replayed by
    ``_prepared_step`` on the traced lengths (bit for bit), other lengths run the op
    function (its checks: a length outside [1, T] is refused on a replay too)."""
    from hwbench.harness.suites.translator_suite import case_models
    from hwbench.models.translator import export

    encoder = hwbench.Session(case_models(2)[0], "cpu", threads=1)
    feeds = export.source_feeds(["march 3, 2014", "12/01/99"], 32)
    encoder.run(feeds)
    assert "= H2(" in encoder.executor.plan.source  # the LSTM
    step = encoder.executor.plan._fn.__globals__["H2"]
    bound = dict(zip(step.__code__.co_freevars,
                     (c.cell_contents for c in step.__closure__), strict=True))
    assert bound["kernel"].__func__ is type(encoder.backend)._rnn  # not the trace's wrapper
    # the traced lengths: one primitive to the longest, bound (``cpu/rnn_lengths.py``:
    # the encoder reads no Y_c)
    assert bound["runner"].__qualname__ == "_run_once.<locals>.run_once"
    be, checked = encoder.backend, []
    public = be.rnn
    be.rnn = lambda *a, **k: checked.append(1) or public(*a, **k)
    other = {**feeds, "lengths": feeds["lengths"][::-1].copy()}
    for f, op_function in ((feeds, False), (other, True)):
        expected = encoder.executor.run(f)
        checked.clear()
        got = encoder.run(f)
        assert bool(checked) == op_function
        assert all(a.tobytes() == b.tobytes() for a, b in zip(got, expected, strict=True))
    for bad in (0, 33):
        wrong = {**feeds, "lengths": np.array([bad, 5], feeds["lengths"].dtype)}
        with pytest.raises(hwbench.errors.ArgumentError):
            encoder.run(wrong)


def test_began_generator_replays_bit_for_bit_on_fast_paths():
    """BEGAN's generator: each Elu fused into its conv (a oneDNN post-op) and the nearest
    2x Resize (round_prefer_floor, never a tie: oneDNN's picks) run on the conv's blocked
    output in its own layout (``blocked_resize``), the next conv reading the result as it
    is; every call on a fast path and bit for bit. A plain input (Fortran-ordered) runs
    the Resize kernel itself."""
    from hwbench.backends.cpu.layouts import BlockedArray
    from hwbench.graph.onnx_import import load_onnx
    from hwbench.models import began

    gen, _ = began.load()
    model = hwbench.Model("began", load_onnx(began.to_onnx(gen, batch=2), batch=2))
    sess = hwbench.Session(model, "cpu", threads=1)
    assert "Elu" not in {s.kind for s in sess.executor._steps}
    name, shape = model.graph.inputs[0].name, model.graph.inputs[0].shape
    for seed in range(3):
        run_both(sess, {name: np.random.default_rng(seed).standard_normal(shape)
                        .astype(np.float32)})
    calls = prepared(sess)
    assert all(k.fast() for k in calls)
    resize = next(k for k in calls if k.kernel.__name__ == "_resize")
    fast, seen = resize.impl[0], []
    resize.impl[0] = lambda x: seen.append((type(x), type(fast(x)))) or fast(x)
    run_both(sess, {name: np.ones(shape, np.float32)})
    assert seen == [(BlockedArray, BlockedArray)]
    p = resize.problem
    x = np.asfortranarray(np.random.default_rng(5).standard_normal(p.shape)
                          .astype(np.float32))
    assert fast(x).tobytes() == resize.kernel(p, x).tobytes()


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_rnn_on_traced_lengths_replays_the_bound_spans_bit_for_bit(op):
    """A forward LSTM/GRU/RNN with three distinct lengths (and initial states) replays
    its spans' bound primitives (``rnn_lengths``; an LSTM whose Y_c is read), or one
    primitive to the longest length (GRU, RNN, an LSTM without Y_c), with the normal
    path's bytes (its spans'); with ``fast_replay=False`` none is built."""
    from onnx import TensorProto, helper

    from hwbench.graph.onnx_import import load_onnx

    t, n, i, h = 6, 4, 5, 3
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    rng = np.random.default_rng(5)
    inits = [helper.make_tensor(name, TensorProto.FLOAT, shape,
                                (rng.standard_normal(shape) * 0.5).ravel().tolist())
             for name, shape in (("W", (1, gates * h, i)), ("R", (1, gates * h, h)),
                                 ("B", (1, 2 * gates * h)))]
    ins = ["x", "W", "R", "B", "lens", "h0"] + (["c0"] if op == "LSTM" else [])
    outs = ["y", "y_h"] + (["y_c"] if op == "LSTM" else [])
    value = helper.make_tensor_value_info
    inputs = [value("x", TensorProto.FLOAT, [t, n, i]), value("lens", TensorProto.INT32, [n]),
              value("h0", TensorProto.FLOAT, [1, n, h])]
    if op == "LSTM":
        inputs.append(value("c0", TensorProto.FLOAT, [1, n, h]))
    graph = helper.make_graph(
        [helper.make_node(op, ins, outs, hidden_size=h)], "rnn_lengths", inputs,
        [value("y", TensorProto.FLOAT, [t, 1, n, h]), value("y_h", TensorProto.FLOAT, [1, n, h])]
        + ([value("y_c", TensorProto.FLOAT, [1, n, h])] if op == "LSTM" else []), inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    feeds = {"x": rng.standard_normal((t, n, i), dtype=np.float32),
             "lens": np.array([2, 6, 2, 4], np.int32),
             "h0": rng.standard_normal((1, n, h), dtype=np.float32)}
    if op == "LSTM":
        feeds["c0"] = rng.standard_normal((1, n, h), dtype=np.float32)
    sess = hwbench.Session(hwbench.Model("r", load_onnx(proto)), "cpu", threads=1)
    for _ in range(3):
        run_both(sess, feeds)
    step = sess.executor.plan._fn.__globals__["H0"]
    bound = dict(zip(step.__code__.co_freevars,
                     (c.cell_contents for c in step.__closure__), strict=True))
    assert bound["runner"].__qualname__ == ("lengths_runner.<locals>.run_spans"
                                            if op == "LSTM" else "_run_once.<locals>.run_once")
    if op == "LSTM":  # Y_c dropped: no final cell state, one primitive
        proto.graph.node[0].output[2] = ""
        proto.graph.output.pop()
        once = hwbench.Session(hwbench.Model("r", load_onnx(proto)), "cpu", threads=1)
        for _ in range(3):
            run_both(once, feeds)
        step = once.executor.plan._fn.__globals__["H0"]
        runner = step.__closure__[step.__code__.co_freevars.index("runner")].cell_contents
        assert runner.__qualname__ == "_run_once.<locals>.run_once"
        assert [a.tobytes() for a in once.run(feeds)] == \
            [a.tobytes() for a in sess.run(feeds)[:2]]
    sess.backend.fast_replay = False  # the A/B switch: no runner built
    assert sess.backend._rnn_lengths_runner(bound["problem"], *bound["fixed"]) is None


@pytest.mark.parametrize("channels", [16, 24])
def test_a_blocked_resize_feeds_the_next_conv_padded_channels_and_all(channels):
    """Conv → nearest 2x Resize → Conv with 16 and 24 channels (nChw16c pads 24 to 32):
    the Resize replays on the blocked layout (``blocked_resize``), bit for bit with the
    normal path and within float32 of the float64 reference."""
    from onnx import TensorProto, helper, numpy_helper

    from hwbench.backends.cpu.layouts import BlockedArray
    from hwbench.backends.reference import ReferenceBackend
    from hwbench.graph.onnx_import import load_onnx

    rng = np.random.default_rng(3)
    c = channels
    inits = [numpy_helper.from_array((rng.standard_normal(s) * 0.3).astype(np.float32), n)
             for n, s in (("w1", (c, 3, 3, 3)), ("b1", (c,)), ("w2", (c, c, 3, 3)),
                          ("b2", (c,)))]
    inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"))
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], pads=[1] * 4),
             helper.make_node("Resize", ["a", "", "scales"], ["u"], mode="nearest"),
             helper.make_node("Conv", ["u", "w2", "b2"], ["y"], pads=[1] * 4)]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "up", [value("x", TensorProto.FLOAT, [2, 3, 5, 6])],
                              [value("y", TensorProto.FLOAT, [2, c, 10, 12])], inits)
    model = hwbench.Model("up", load_onnx(helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)])))
    sess = hwbench.Session(model, "cpu", threads=1)
    feeds = {"x": rng.standard_normal((2, 3, 5, 6)).astype(np.float32)}
    for _ in range(3):
        run_both(sess, feeds)
    resize = next(k for k in prepared(sess) if k.kernel.__name__ == "_resize")
    fast, seen = resize.impl[0], []
    resize.impl[0] = lambda x: seen.append(type(fast(x))) or fast(x)
    got = sess.run(feeds)[0]
    assert seen == [BlockedArray]
    want = hwbench.Session(model, backend=ReferenceBackend()).run(feeds)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
