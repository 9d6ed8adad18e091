"""The chained run of a tiny graph (``hwbench.graph.chain``, the cpu links in
``backends/cpu/chain_links.py``): taken for mlp, autoencoder and LeNet, the normal path's
results bit for bit, every feed still screened, a fresh result every run, and refused
(the plan's replay kept) where it would not reproduce the plan."""

from __future__ import annotations

import numpy as np
import pytest
from plan_helpers import one_input_feeds, same_bytes

import hwbench
from hwbench.errors import ArgumentError
from hwbench.graph import chain, executor
from hwbench.pytest_plugin import availability

MODELS = ["mlp", "autoencoder", "lenet"]


@pytest.fixture(autouse=True)
def _cpu() -> None:
    ok, why = availability("cpu")
    if not ok:
        pytest.skip(f"backend cpu unavailable: {why}")


def _session(name: str, batch: int = 1, **options) -> hwbench.Session:
    return hwbench.Session(hwbench.load_model(name, batch=batch), backend="cpu", **options)


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("name", MODELS)
def test_chained_bit_for_bit(name: str, batch: int) -> None:
    sess = _session(name, batch)
    f = one_input_feeds(sess)
    sess.run(f)  # traced
    sess.run(f)  # the plan's first replay: the chain is built and checked here
    assert sess.executor.chained
    for seed in range(3):
        f = one_input_feeds(sess, seed)
        same_bytes(sess.run(f), sess.executor.run(f))  # the normal path, every check
    # 5 session runs and 3 normal ones: the chain's own check run is not counted
    assert sess.executor.totals["runs"] == 8
    assert set(sess.last_timings) == {"transfer_in_s", "compute_s", "transfer_out_s"}


@pytest.mark.parametrize("name", MODELS)
def test_feeds_in_any_layout_or_alignment(name: str) -> None:
    """A feed read in place at any float32 alignment, and copied first when it is not
    C-contiguous: the same bits as the normal path."""
    sess = _session(name)
    f = one_input_feeds(sess)
    sess.run(f), sess.run(f)
    assert sess.executor.chained
    (key, x), = f.items()
    want = sess.executor.run(f)
    raw = np.empty(x.nbytes + 64, np.uint8)
    for offset in (2, 4, 8, 16, 32):  # each alignment in a 64-byte line (2: copied first)
        moved = raw[offset:offset + x.nbytes].view(np.float32).reshape(x.shape)
        moved[...] = x
        same_bytes(sess.run({key: moved}), want)
    fortran = np.asfortranarray(x)
    assert not fortran.flags.c_contiguous or x.ndim < 2 or min(x.shape) == 1
    same_bytes(sess.run({key: fortran}), want)
    wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), np.float32)
    wide[..., ::2] = x
    same_bytes(sess.run({key: wide[..., ::2]}), want)  # a strided view: copied first


def test_results_are_fresh_and_feeds_untouched() -> None:
    sess = _session("lenet")
    f = one_input_feeds(sess)
    before = f["input"].copy()
    sess.run(f), sess.run(f)
    first, = sess.run(f)
    kept = first.copy()
    second, = sess.run(one_input_feeds(sess, 1))
    assert not np.shares_memory(first, second)
    assert first.flags.owndata and first.flags.writeable
    assert first.tobytes() == kept.tobytes()  # a later run wrote nothing the caller holds
    first[...] = np.nan  # the caller's to write
    same_bytes(sess.run(f), [kept])
    assert f["input"].tobytes() == before.tobytes()
    assert f["input"] not in sess.backend.frozen  # read in place, nothing kept per feed


def test_a_held_view_of_a_result_is_never_written() -> None:
    """The chain writes its last result again only where nothing else holds it: a view
    the caller keeps (of a result it dropped) holds it."""
    sess = _session("mlp")
    f, g = one_input_feeds(sess), one_input_feeds(sess, 1)
    sess.run(f), sess.run(f)
    assert sess.executor.chained
    row = sess.run(f)[0][0]  # the result dropped, a view of its first row kept
    kept = row.copy()
    for _ in range(3):
        other, = sess.run(g)
        assert not np.shares_memory(other, row)
    assert row.tobytes() == kept.tobytes()
    dropped_address = sess.run(g)[0].__array_interface__["data"][0]
    assert sess.run(g)[0].__array_interface__["data"][0] == dropped_address  # reused


def test_feeds_still_screened() -> None:
    sess = _session("mlp")
    f = one_input_feeds(sess)
    sess.run(f), sess.run(f)
    assert sess.executor.chained
    bad = f["input"].copy()
    bad[0, 0, 1, 2] = np.nan
    with pytest.raises(ArgumentError, match="'input'.*NaN"):
        sess.run({"input": bad})
    with pytest.raises(ArgumentError, match="'input'.*shape"):
        sess.run({"input": bad[..., :4]})


def test_refused_where_it_would_differ(monkeypatch) -> None:
    """The chain is taken only when it reproduces the plan's run it was built in."""
    monkeypatch.setattr(executor, "same_results", lambda got, want: False)
    sess = _session("mlp")
    f = one_input_feeds(sess)
    sess.run(f), sess.run(f)
    assert not sess.executor.chained
    same_bytes(sess.run(f), sess.executor.run(f))
    assert sess.executor.totals["runs"] == 4  # 3 session runs, 1 normal one


def test_not_for_graphs_past_the_size_limit(monkeypatch) -> None:
    monkeypatch.setattr(chain, "CHAIN_MAX_BYTES", 0)
    sess = _session("lenet")
    f = one_input_feeds(sess)
    sess.run(f), sess.run(f)
    assert not sess.executor.chained


def test_same_results_compares_bits() -> None:
    a = np.array([0.0, 1.0], np.float32)
    assert chain.same_results([a], [a.copy()])
    assert not chain.same_results([a], [np.array([-0.0, 1.0], np.float32)])
    assert not chain.same_results([a], [a.astype(np.float64)])
    assert not chain.same_results(None, [a])


def test_each_link_runs_with_its_own_thread_count(tmp_path) -> None:
    """A Gemm big enough for 2 threads between small kernels on 1 (the graph of
    ``test_cpu_prepared_kernels``' plan test): every link runs with its call's count
    (libgomp's and the primitive cache's), told only where the count changes."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(3)
    inits = {"w1": (512, 512), "b1": (512,), "w2": (512, 8), "w3": (8, 512)}
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["g1"]),
             helper.make_node("Relu", ["g1"], ["r1"]),
             helper.make_node("Gemm", ["r1", "w2"], ["g2"]),
             helper.make_node("Softmax", ["g2"], ["s2"], axis=1),
             helper.make_node("Gemm", ["s2", "w3"], ["y"])]
    graph = helper.make_graph(
        nodes, "threads", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 512])],
        [numpy_helper.from_array((rng.standard_normal(s) / 20).astype(np.float32), n)
         for n, s in inits.items()])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]),
         tmp_path / "threads.onnx")
    sess = hwbench.Session(hwbench.load_model(str(tmp_path / "threads.onnx")), "cpu",
                           threads=2)
    be, ex = sess.backend, sess.executor
    f = {"x": rng.standard_normal((64, 512), dtype=np.float32)}
    sess.run(f), sess.run(f)
    assert ex.chained
    assert sum(k.startswith("E") and k[1:].isdigit() for k in ex._entry.__globals__) == 2
    calls = [st[1] for st in ex.plan.chain_steps]
    assert [be.threads_for(k.problem) for k in calls] == [2, 1, 1, 1]
    seen = []

    def note(k) -> None:
        seen.append((be._threads_now, be.dnnl._threads_set[0], be.threads_for(k.problem)))

    def spied_raw(raw, k):
        def call():
            note(k)
            return raw()
        call.check = raw.check
        return call

    for k in calls:  # spied (the calls and their bound forms), then the chain built again
        link = k.impl[0].link
        inner, bind = link.into, link.bind

        def spy(a, b, _inner=inner, _k=k):
            note(_k)
            _inner(a, b)
        link.into = spy
        if bind is not None:
            link.bind = lambda src, dst, _bind=bind, _k=k: [spied_raw(r, _k)
                                                            for r in _bind(src, dst)]
    ex._entry = ex._chain_next(ex._compile_entry())
    for seed in range(3):
        g = {"x": np.random.default_rng(seed).standard_normal((64, 512), dtype=np.float32)}
        same_bytes(sess.run(g), ex.run(g))
    assert ex.chained
    # the chain's check run and two chained runs, 4 links each
    assert len(seen) == 12 and all(now == omp == want for now, omp, want in seen)


def _graph_session(tmp_path, nodes, shape=(2, 24)) -> hwbench.Session:
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))])
    path = tmp_path / "small.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)
    return hwbench.Session(hwbench.load_model(str(path)), "cpu")


def test_eltwise_links_chain_and_two_runtime_inputs_do_not(tmp_path) -> None:
    from onnx import helper

    sess = _graph_session(tmp_path, [helper.make_node("Relu", ["x"], ["r"]),
                                     helper.make_node("Sigmoid", ["r"], ["s"]),
                                     helper.make_node("Softmax", ["s"], ["y"], axis=1)])
    f = {"x": np.random.default_rng(0).standard_normal((2, 24)).astype(np.float32)}
    sess.run(f), sess.run(f)
    assert sess.executor.chained
    same_bytes(sess.run(f), sess.executor.run(f))
    mixed = _graph_session(tmp_path, [helper.make_node("Relu", ["x"], ["r"]),
                                      helper.make_node("Mul", ["r", "x"], ["y"])])
    mixed.run(f), mixed.run(f)
    assert not mixed.executor.chained  # Mul reads two run-time values: no link
    same_bytes(mixed.run(f), mixed.executor.run(f))
