"""The chained run of a graph of several inputs and outputs (``hwbench.graph.step_chain``,
the fixed forms in ``backends/cpu/fixed_calls.py``): taken for the translator's decoder
step, the normal path's results bit for bit on feeds that change every run, every feed
still screened, fresh outputs, feeds untouched, and refused where it would not reproduce
the plan."""

from __future__ import annotations

import numpy as np
import pytest
from plan_helpers import same_bytes

import hwbench
from hwbench.errors import ArgumentError
from hwbench.graph import executor, step_chain
from hwbench.harness.suites import translator_suite
from hwbench.models.translator import export
from hwbench.pytest_plugin import availability


@pytest.fixture(autouse=True)
def _cpu() -> None:
    ok, why = availability("cpu")
    if not ok:
        pytest.skip(f"backend cpu unavailable: {why}")


def _step(batch: int, **options) -> hwbench.Session:
    return hwbench.Session(translator_suite.case_models(batch)[1], backend="cpu", **options)


def _feeds(sess: hwbench.Session, seed: int) -> dict[str, np.ndarray]:
    """Random feeds of the step's shapes: token ids in range, states of either sign, a
    mask with some positions masked."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for v in sess.graph.inputs:
        shape = tuple(v.shape)
        if v.name == "previous":
            feeds[v.name] = rng.integers(0, 12, shape).astype(np.int64)
        elif v.name == "mask":
            feeds[v.name] = np.where(rng.random(shape) < 0.3, -1e4, 0.0).astype(np.float32)
        else:
            feeds[v.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _built(sess: hwbench.Session) -> dict[str, np.ndarray]:
    f = _feeds(sess, 0)
    sess.run(f)  # traced
    sess.run(f)  # the plan's first replay: the chain is built and checked here
    return f


@pytest.mark.parametrize("batch", [1, 8])
def test_decoder_step_chained_bit_for_bit(batch: int) -> None:
    """Every run's feeds differ (ids, states, mask): a stale buffer, a feed not copied
    in or an output not written would show here."""
    sess = _step(batch)
    _built(sess)
    assert sess.executor.step_chained and not sess.executor.chained
    for seed in range(1, 6):
        f = _feeds(sess, seed)
        same_bytes(sess.run(f), sess.executor.run(f))  # the normal path, every check
    sess.run(f)
    times = sess.last_timings  # the chained run's own: feeds in, the calls, outputs out
    assert set(times) == {"transfer_in_s", "compute_s", "transfer_out_s"}
    assert all(t > 0 for t in times.values())


@pytest.mark.parametrize("batch", [1, 3])
def test_decode_as_without_the_plan(batch: int) -> None:
    """The whole decoding loop (outputs fed back as the next step's feeds) gives the
    characters of the unplanned sessions."""
    encoder_model, step_model = translator_suite.case_models(batch)
    sources, _ = translator_suite._sentences(batch)
    sessions = [(hwbench.Session(encoder_model, backend="cpu", plan=plan),
                 hwbench.Session(step_model, backend="cpu", plan=plan)) for plan in (True, False)]
    for i in range(0, 4 * batch, batch):
        feeds = export.source_feeds(sources[i:i + batch], translator_suite.SEQUENCE)
        got, want = (export.decode(e.run, s.run, feeds) for e, s in sessions)
        np.testing.assert_array_equal(got, want)
    assert sessions[0][1].executor.step_chained


def test_outputs_fresh_and_feeds_untouched() -> None:
    sess = _step(1)
    _built(sess)
    f = _feeds(sess, 1)
    before = {k: v.copy() for k, v in f.items()}
    first = sess.run(f)
    kept = [x.copy() for x in first]
    second = sess.run(_feeds(sess, 2))
    for a in first:
        assert a.flags.owndata and a.flags.writeable
        assert not any(np.shares_memory(a, b) for b in second)
        assert not any(np.shares_memory(a, x) for x in f.values())
    same_bytes(first, kept)  # a later run wrote nothing the caller holds
    for a in first:
        a[...] = np.nan  # the caller's to write
    same_bytes(sess.run(f), kept)
    for k, v in f.items():
        assert v.tobytes() == before[k].tobytes()


def test_feeds_in_any_layout() -> None:
    sess = _step(2)
    _built(sess)
    f = _feeds(sess, 3)
    want = sess.executor.run(f)
    wide = np.zeros(f["states"].shape[:-1] + (2 * f["states"].shape[-1],), np.float32)
    wide[..., ::2] = f["states"]
    same_bytes(sess.run({**f, "states": wide[..., ::2], "h": np.asfortranarray(f["h"])}), want)


def test_feeds_still_screened() -> None:
    sess = _step(1)
    f = _built(sess)
    bad = f["c"].copy()
    bad[0, 3] = np.nan
    with pytest.raises(ArgumentError, match="'c'.*NaN"):
        sess.run({**f, "c": bad})
    for name in ("states", "mask"):  # one screen covers every float feed's copy
        bad = f[name].copy()
        bad.reshape(-1)[-1] = np.inf
        with pytest.raises(ArgumentError, match=f"'{name}'.*NaN"):
            sess.run({**f, name: bad})
    with pytest.raises(ArgumentError, match="'h'.*shape"):
        sess.run({**f, "h": f["h"][:, :4]})
    with pytest.raises(ArgumentError, match="indices"):  # an id past the vocabulary
        sess.run({**f, "previous": np.array([99], np.int64)})
    same_bytes(sess.run(f), sess.executor.run(f))  # and the chain still serves after


def test_huge_finite_feeds_run_as_the_plan_does() -> None:
    """Squares that overflow fail the one-pass screen: the general path decides (the
    feeds are finite) and runs them."""
    sess = _step(1)
    f = _built(sess)
    huge = {**f, "keys_t": np.full_like(f["keys_t"], 1e20)}
    same_bytes(sess.run(huge), sess.executor.run(huge))


def test_refused_where_it_would_differ(monkeypatch) -> None:
    monkeypatch.setattr(executor, "same_results", lambda got, want: False)
    sess = _step(1)
    f = _built(sess)
    assert not sess.executor.step_chained
    same_bytes(sess.run(f), sess.executor.run(f))


def test_not_for_graphs_past_the_size_limit(monkeypatch) -> None:
    monkeypatch.setattr(step_chain, "STEP_CHAIN_MAX_BYTES", 0)
    sess = _step(1)
    _built(sess)
    assert not sess.executor.step_chained


@pytest.mark.parametrize("batch", [1, 8])
def test_encoder_chained_on_its_traced_lengths(batch: int) -> None:
    """The encoder (its LSTM on run-time lengths) chains while the lengths are the traced
    ones: other characters of those lengths run chained, bit for bit; other lengths
    go to the plan, which runs the LSTM on them."""
    sess = hwbench.Session(translator_suite.case_models(batch)[0], backend="cpu")
    sources, _ = translator_suite._sentences(batch)
    feeds = export.source_feeds(sources[:batch], translator_suite.SEQUENCE)
    sess.run(feeds), sess.run(feeds)
    assert sess.executor.step_chained
    rng = np.random.default_rng(batch)
    lengths = feeds["lengths"]
    plan = sess.executor.plan
    replay = plan._fn

    def unused(inputs):
        raise AssertionError("the plan ran where the chain serves")
    for _ in range(3):
        ids = rng.integers(2, 76, feeds["source"].shape).astype(np.int64)
        ids[np.arange(ids.shape[1])[None, :] >= lengths[:, None]] = 0
        f = {"source": ids, "lengths": lengths.copy()}
        plan._fn = unused
        got = sess.run(f)
        plan._fn = replay
        same_bytes(got, sess.executor.run(f))
    other = export.source_feeds(sources[batch:2 * batch], translator_suite.SEQUENCE)
    assert other["lengths"].tobytes() != lengths.tobytes()
    same_bytes(sess.run(other), sess.executor.run(other))


def _graph_session(tmp_path, name: str, inputs: dict, nodes: list, outputs: dict,
                   inits: dict | None = None) -> hwbench.Session:
    from onnx import TensorProto, helper, numpy_helper, save

    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, name, [value(n, TensorProto.FLOAT, list(s)) for n, s in inputs.items()],
        [value(n, TensorProto.FLOAT, list(s)) for n, s in outputs.items()],
        [numpy_helper.from_array(v, n) for n, v in (inits or {}).items()])
    path = tmp_path / f"{name}.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)
    return hwbench.Session(hwbench.load_model(str(path)), backend="cpu")


def _random(shapes: dict, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}


def test_primitive_forms_chain_bit_for_bit(tmp_path) -> None:
    """The fixed forms of the primitive paths: an Add whose full-shape operand comes
    second (the binary primitive, operands swapped), a batched MatMul of two activations
    (the matmul primitive), a Transpose (a copy) and a Gemm (a link)."""
    from onnx import helper

    inputs = {"v": (256,), "x": (256, 256), "y": (2, 64, 64), "z": (2, 64, 64)}
    w = (np.random.default_rng(9).standard_normal((256, 8)) / 16).astype(np.float32)
    nodes = [helper.make_node("Add", ["v", "x"], ["s"]),
             helper.make_node("Gemm", ["s", "w"], ["g"]),
             helper.make_node("MatMul", ["y", "z"], ["m"]),
             helper.make_node("Transpose", ["m"], ["t"], perm=[0, 2, 1])]
    sess = _graph_session(tmp_path, "prims", inputs, nodes,
                          {"g": (256, 8), "t": (2, 64, 64)}, {"w": w})
    f = _random(inputs, 0)
    sess.run(f), sess.run(f)
    assert sess.executor.step_chained
    names = {getattr(s[1].impl[0], "__name__", "") for s in sess.executor.plan.step_calls
             if s[1] is not None}
    assert "call" in names  # the bound-primitive paths, not NumPy's
    for seed in range(1, 4):
        f = _random(inputs, seed)
        same_bytes(sess.run(f), sess.executor.run(f))


def test_numpy_forms_chain_bit_for_bit(tmp_path) -> None:
    """The fixed forms of the NumPy paths: an Add of a broadcast operand first (the ufunc
    with the operands swapped), a MatMul by a 1-D activation (reshaped views), a
    Concat of two activations."""
    from onnx import helper

    inputs = {"b": (4,), "a": (2, 3, 4), "u": (4,), "c": (2, 3, 4)}
    nodes = [helper.make_node("Add", ["b", "a"], ["s"]),
             helper.make_node("MatMul", ["s", "u"], ["m"]),
             helper.make_node("Concat", ["s", "c"], ["j"], axis=2)]
    sess = _graph_session(tmp_path, "small", inputs, nodes, {"m": (2, 3), "j": (2, 3, 8)})
    f = _random(inputs, 0)
    sess.run(f), sess.run(f)
    assert sess.executor.step_chained
    for seed in range(1, 4):
        f = _random(inputs, seed)
        same_bytes(sess.run(f), sess.executor.run(f))
