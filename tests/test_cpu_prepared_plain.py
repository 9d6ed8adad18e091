"""The cpu backend's prepared plain-array kernels (``cpu/prepared_plain.py``): batched
MatMul, Add/Mul with a broadcast operand (either side, or both: NumPy's), Concat (NumPy's
below oneDNN's size, the primitive above) replay the normal path's outputs bit for bit,
and arguments they were not built for run the kernel (its answers, its errors)."""

from __future__ import annotations

import numpy as np
import pytest

import hwbench
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
_ok, _why = availability("cpu")
pytestmark = pytest.mark.skipif(not _ok, reason=f"cpu backend unavailable: {_why}")


def prepared(sess: hwbench.Session) -> list:
    """The prepared kernel calls of the session's plan, in the plan's order."""
    ns = sess.executor.plan._fn.__globals__
    return [ns[k] for k in sorted((k for k in ns if k.startswith("K")), key=lambda k: int(k[1:]))]


def run_both(sess: hwbench.Session, feeds: dict) -> None:
    """The plan's outputs against the normal path's, byte for byte."""
    expected = sess.executor.run(feeds)
    got = sess.run(feeds)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


def feeds(seed: int) -> dict:
    """Random inputs of ``plain_ops``' shapes."""
    rng = np.random.default_rng(seed)
    shapes = {"x": (2, 3, 5), "k": (2, 5, 4), "col": (2, 3, 1), "big": (512, 512)}
    return {n: rng.standard_normal(s, dtype=np.float32) for n, s in shapes.items()}


def plain_ops(path) -> hwbench.Model:
    """Batched MatMul (a broadcast batch too), Add with the broadcast operand second and
    first, Mul broadcasting both sides (NumPy's), a small and a 2 MiB Concat."""
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
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "plain_ops",
        [value("x", TensorProto.FLOAT, [2, 3, 5]), value("k", TensorProto.FLOAT, [2, 5, 4]),
         value("col", TensorProto.FLOAT, [2, 3, 1]), value("big", TensorProto.FLOAT, [512, 512])],
        [value("z", TensorProto.FLOAT, [2, 3, 12]), value("zz", TensorProto.FLOAT, [1024, 512])],
        [init("w", (4, 6)), init("bias", (6,)), init("row", (1, 1, 6))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return hwbench.load_model(str(path))


def test_plain_ops_replay_bit_for_bit_on_the_fast_path(tmp_path):
    model = plain_ops(tmp_path / "plain.onnx")
    sess = hwbench.Session(model, "cpu", threads=1, fuse=False)
    for seed in range(3):  # the traced run, the run that builds the fast paths, one more
        run_both(sess, feeds(seed))
    kinds = [(k.kernel.__name__, k.fast()) for k in prepared(sess)]
    assert kinds == [("_matmul", True), ("_matmul", True), ("_add", True), ("_add", True),
                     ("_mul", True), ("_mul", True), ("_concat", True), ("_concat", True)]


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
