"""The cpu backend's thread count per plan step (``cpu/thread_policy.py``): where threads
spin, a short stretch of small steps between two multi-threaded ones runs on every
thread; a head or tail stretch, a long one, a kernel called alone and sleeping threads
keep the size bound's single thread; the bridged plan gives the normal path's bytes."""

from __future__ import annotations

import numpy as np
import pytest
from plan_helpers import prepared, run_both

import hwbench
from hwbench.backends.cpu.thread_policy import MAX_BRIDGED_STEPS, bridged
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
_ok, _why = availability("cpu")
needs_cpu = pytest.mark.skipif(not _ok, reason=f"cpu backend unavailable: {_why}")


@pytest.mark.parametrize("counts, want", [
    ([2, 1, 1, 1, 2], [2, 2, 2, 2, 2]),                     # an SE block between convs
    ([1, 1, 2, 1, 2, 1, 1], [1, 1, 2, 2, 2, 1, 1]),         # head and tail stay
    ([2, 1, None, 1, 2], [2, 2, None, 2, 2]),               # a step with no kernel: skipped
    ([2] + [1] * MAX_BRIDGED_STEPS + [2], [2] * (MAX_BRIDGED_STEPS + 2)),
    ([2] + [1] * (MAX_BRIDGED_STEPS + 1) + [2], [2] + [1] * (MAX_BRIDGED_STEPS + 1) + [2]),
    ([1, 1, 1], [1, 1, 1]),                                 # LeNet: all small
    ([], []),
])
def test_bridged_raises_short_stretches_between_multi_threaded_steps(counts, want):
    assert bridged(counts, 2) == want


def test_bridged_needs_the_full_count_on_both_sides():
    assert bridged([4, 1, 4], 4) == [4, 4, 4]
    assert bridged([4, 1, 1, 4], 4, longest=1) == [4, 1, 1, 4]


def se_between_convs(path) -> hwbench.Model:
    """Conv (16->64, 32x32, ~19 MFLOP: 2 spinning threads) -> GlobalAveragePool -> 1x1
    Conv+Relu -> 1x1 Conv+Sigmoid (all three small: 1 thread alone) -> Mul (256 KiB of
    output: 2) -> 1x1 Conv (64->32, ~4 MFLOP: 2)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)

    def init(name, shape):
        return numpy_helper.from_array((rng.standard_normal(shape) / 8).astype(np.float32),
                                       name)

    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c1"], ["p"]),
             helper.make_node("Conv", ["p", "w2"], ["c2"]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("Conv", ["r2", "w3"], ["c3"]),
             helper.make_node("Sigmoid", ["c3"], ["g"]),
             helper.make_node("Mul", ["c1", "g"], ["m"]),
             helper.make_node("Conv", ["m", "w4"], ["y"])]
    graph = helper.make_graph(
        nodes, "se", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 32, 32])],
        [init("w1", (64, 16, 3, 3)), init("w2", (16, 64, 1, 1)), init("w3", (64, 16, 1, 1)),
         init("w4", (32, 64, 1, 1))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(path))
    return hwbench.load_model(str(path))


def plan_counts(tmp_path, monkeypatch, spinning: bool) -> tuple[list, list, hwbench.Session]:
    """(each prepared call's count in the plan, ``threads_for``'s for it alone, session)."""
    sess = hwbench.Session(se_between_convs(tmp_path / "se.onnx"), "cpu", threads=2)
    monkeypatch.setattr(sess.backend.dnnl, "spinning", spinning)
    feeds = {"x": np.random.default_rng(0).standard_normal((1, 16, 32, 32), dtype=np.float32)}
    sess.run(feeds)
    sess.run(feeds)  # the fast paths built
    calls = [k for k in prepared(sess) if hasattr(k, "enter")]
    return ([k.enter_key[1] for k in calls], [sess.backend.threads_for(k.problem)
                                              for k in calls], sess)


@needs_cpu
def test_spinning_plan_runs_the_se_stretch_on_both_threads(tmp_path, monkeypatch):
    counts, alone, sess = plan_counts(tmp_path, monkeypatch, spinning=True)
    assert alone == [2, 1, 1, 1, 2, 2]  # conv, pool, conv+relu, conv+sigmoid, mul, conv
    assert counts == [2, 2, 2, 2, 2, 2]
    for seed in range(2):
        run_both(sess, {"x": np.random.default_rng(seed).standard_normal(
            (1, 16, 32, 32), dtype=np.float32)})


@needs_cpu
def test_sleeping_threads_keep_the_size_bound(tmp_path, monkeypatch):
    from hwbench.backends.cpu import backend as cpu_backend

    # the spinning bounds, so that the same steps are small and large as above
    monkeypatch.setattr(cpu_backend.CpuBackend, "small_problem", property(lambda self: (
        cpu_backend.SPINNING_SMALL_PROBLEM_FLOPS, cpu_backend.SPINNING_SMALL_PROBLEM_BYTES)))
    counts, alone, _ = plan_counts(tmp_path, monkeypatch, spinning=False)
    assert counts == alone == [2, 1, 1, 1, 2, 2]
