"""``backends/cpu/channel_shuffle``: a float32 channel shuffle (the Gather that
``shuffles_as_gathers`` leaves) as one oneDNN reorder, from a grouped conv's NHWC output
(kept NHWC, and the depthwise conv reading it runs NHWC) or a plain array (kept plain),
with the results of the three nodes."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_close

from hwbench.backends.cpu import channel_shuffle
from hwbench.backends.cpu.layouts import BlockedArray
from hwbench.graph import Executor, optimize
from hwbench.graph.ir import Graph, Node, ValueInfo
from hwbench.models.session import session_backend


def _graph(rng, n: int, c: int, hw: int, groups: int, conv_first: bool) -> Graph:
    """[grouped 1x1 conv + Relu ->] shuffle(groups) -> depthwise 3x3 -> grouped 1x1."""
    inits = {"split": np.array([n, groups, c // groups, hw, hw], np.int64),
             "back": np.array([n, c, hw, hw], np.int64),
             "wd": rng.standard_normal((c, 1, 3, 3)).astype(np.float32),
             "wg": rng.standard_normal((c, c // groups, 1, 1)).astype(np.float32),
             "w0": rng.standard_normal((c, c // groups, 1, 1)).astype(np.float32)}
    nodes = []
    x = "x"
    if conv_first:
        nodes += [Node("Conv", ["x", "w0"], ["c0"], {"group": groups, "kernel_shape": [1, 1]}),
                  Node("Relu", ["c0"], ["r0"])]
        x = "r0"
    nodes += [Node("Reshape", [x, "split"], ["s5"]),
              Node("Transpose", ["s5"], ["t5"], {"perm": [0, 2, 1, 3, 4]}),
              Node("Reshape", ["t5", "back"], ["s"]),
              Node("Conv", ["s", "wd"], ["d"], {"group": c, "kernel_shape": [3, 3],
                                                "pads": [1, 1, 1, 1]}),
              Node("Conv", ["d", "wg"], ["out"], {"group": groups, "kernel_shape": [1, 1]})]
    return Graph("shuffle", [ValueInfo("x", (n, c, hw, hw))], [ValueInfo("out", (None,))],
                 inits, nodes, 13)


@pytest.mark.parametrize("conv_first", [True, False], ids=["from-nhwc", "from-plain"])
def test_float_shuffle_is_one_reorder_with_the_same_bits(monkeypatch, conv_first):
    rng = np.random.default_rng(7)
    n, c, hw, groups = 2, 136, 6, 4
    graph = _graph(rng, n, c, hw, groups, conv_first)
    optimized = optimize(graph)
    assert optimized.op_counts()["Gather"] == 1 and "Transpose" not in optimized.op_counts()
    results = []
    real = channel_shuffle.shuffle

    def spy(be, x, g):
        results.append(real(be, x, g))
        return results[-1]
    monkeypatch.setattr(channel_shuffle, "shuffle", spy)
    be = session_backend("cpu")
    session = Executor(optimized, be)
    for seed in range(4):  # traced, fast path built, replayed
        x = np.random.default_rng(seed).standard_normal((n, c, hw, hw)).astype(np.float32)
        want = Executor(graph, session_backend("cpu")).run({"x": x})[0]  # the three nodes
        got = session.replay({"x": x})[0]
        if conv_first:  # the depthwise conv runs NHWC: another kernel, its own rounding
            assert_close(got, want, 9 + c // groups)
        else:
            assert got.tobytes() == want.tobytes()
    # from NHWC: the depthwise conv reads and writes NHWC (no reorders around it)
    assert any(k[0] == "conv" and k[2] == "nhwc" for k in be._primitives) == conv_first
    kept = BlockedArray if conv_first else np.ndarray
    assert results and all(type(r) is kept for r in results)
    plain = results[-1].plain(np.empty((n, c, hw, hw), np.float32)) if conv_first \
        else results[-1]
    assert plain.shape == (n, c, hw, hw)
    ns = session.plan._fn.__globals__  # the plan replays it through the bound reorder
    fast = [ns[k].kernel.__name__ for k in ns if k.startswith("K") and ns[k].fast()]
    assert "_gather" in fast


def test_views_move_channel_k_times_per_plus_j_to_j_times_groups_plus_k():
    n, c, h, w, g = 1, 12, 2, 3, 3
    x = np.arange(n * c * h * w).reshape(n, c, h, w)
    want = x.reshape(n, g, c // g, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)
    for nhwc in (True, False):
        dims, src, dst = channel_shuffle._views(n, c, h, w, g, nhwc)
        flat_in = x.transpose(0, 2, 3, 1).ravel() if nhwc else x.ravel()
        out = np.empty_like(flat_in)
        for idx in np.ndindex(*dims):
            out[np.dot(idx, dst)] = flat_in[np.dot(idx, src)]
        got = out.reshape(n, h, w, c).transpose(0, 3, 1, 2) if nhwc else out.reshape(x.shape)
        np.testing.assert_array_equal(got, want)


def test_shuffle_groups_finds_g_and_refuses_the_identity_and_other_orders():
    shuffle = np.arange(12).reshape(3, 4).T.reshape(-1)  # 3 groups of 4
    assert channel_shuffle.shuffle_groups(shuffle, 12) == 3
    assert channel_shuffle.shuffle_groups(np.arange(12), 12) == 0  # C/g = 1: nothing moves
    assert channel_shuffle.shuffle_groups(shuffle[::-1].copy(), 12) == 0
