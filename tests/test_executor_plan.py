"""The compiled plan (``hwbench.graph.plan``, ``Executor.replay``, what ``Session.run``
uses): the same outputs as the normal path bit for bit, on every backend; the feeds still
screened on every run; outputs never shared between runs; the backend left as it was."""

from __future__ import annotations

import re

import numpy as np
import pytest

import hwbench
from hwbench.backends import backend_names
from hwbench.errors import ArgumentError, DTypeError
from hwbench.models.generated import GENERATED
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")

BACKENDS = backend_names("known")
# The generated architectures, cut down to seconds (same ops: attention, depthwise
# convs, SE blocks, LayerNorm, GELU, HardSwish, Gather of token ids).
SMALL = {
    "bert_base": dict(layers=1, hidden=32, heads=2, ffn=64, vocab=50, sequence=8),
    "gpt2": dict(layers=1, hidden=32, heads=2, vocab=50, sequence=8),
    "mobilenet_v3_large": dict(image=32, classes=10),
    "convnext_tiny": dict(image=32, classes=10, depths=(1, 1, 1, 1), widths=(8, 16, 32, 64)),
}
ZOO = {"shufflenet"}  # the onnx wheel's smallest CNN (0.14 GFLOP), seeded random weights
MODELS = ["lenet", "mlp", "lenet@int8", *SMALL, *ZOO]
_models: dict[str, hwbench.Model] = {}


def backend_or_skip(name: str) -> str:
    ok, why = availability(name)
    if not ok:
        pytest.skip(f"backend {name} unavailable: {why}")
    return name


def model(name: str, tmp_path_factory) -> hwbench.Model:
    if name not in _models:
        if name in SMALL:
            path = tmp_path_factory.mktemp("plan") / f"{name}.onnx"
            onnx.save(GENERATED[name](1, 0, **SMALL[name]), str(path))
            _models[name] = hwbench.load_model(str(path))
        elif name in ZOO:
            _models[name] = hwbench.load_model(name).randomized(seed=3)
        else:
            _models[name] = hwbench.load_model(name.split("@")[0])
    return _models[name]


def session(name: str, backend: str, tmp_path_factory, **options) -> hwbench.Session:
    precision = "int8" if name.endswith("@int8") else "fp32"
    return hwbench.Session(model(name, tmp_path_factory), backend=backend,
                           precision=precision, **options)


def feeds(sess: hwbench.Session, seed: int = 0) -> dict[str, np.ndarray]:
    """Images N(0, 1); token ids 0/1 (inside every table a Gather reads); masks of ones."""
    rng = np.random.default_rng(seed)
    out = {}
    for arg in sess.get_inputs():
        if arg.type == "tensor(float)":
            out[arg.name] = rng.standard_normal(arg.shape, dtype=np.float32)
        elif "mask" in arg.name:
            out[arg.name] = np.ones(arg.shape, np.int64)
        else:
            out[arg.name] = rng.integers(0, 2, arg.shape).astype(np.int64)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", MODELS)
def test_replay_equals_the_normal_path_bit_for_bit(name, backend, tmp_path_factory):
    sess = session(name, backend_or_skip(backend), tmp_path_factory)
    for seed in (0, 1, 2):  # the traced run, then two replays on other data
        f = feeds(sess, seed)
        expected = sess.executor.run(f)
        got = sess.run(f)
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert np.array_equal(a, b, equal_nan=True), f"{name} on {backend}, seed {seed}"
    plan = sess.executor.plan
    assert plan is not None and plan.prepared_steps > 0  # kernels called directly


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_outputs_are_never_overwritten_by_a_later_run(backend, tmp_path_factory):
    sess = session("lenet", backend_or_skip(backend), tmp_path_factory)
    first = sess.run(feeds(sess, 0))
    kept = [a.copy() for a in first]
    for seed in (1, 2, 3):
        later = sess.run(feeds(sess, seed))
        for a, b in zip(first, later, strict=True):
            assert not np.shares_memory(a, b)
    for a, b in zip(first, kept, strict=True):
        assert np.array_equal(a, b)
        assert a.flags.writeable and a.flags.owndata


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_bad_feeds_are_refused_after_the_plan_is_built(backend, tmp_path_factory):
    sess = session("lenet", backend_or_skip(backend), tmp_path_factory)
    good = feeds(sess)
    name = next(iter(good))
    sess.run(good)
    assert sess.executor.plan is not None
    x = good[name]
    with pytest.raises(ArgumentError, match=f"'{name}'.*NaN"):
        sess.run({name: np.where(np.arange(x.size).reshape(x.shape) == 3, np.nan, x)
                  .astype(np.float32)})
    with pytest.raises(DTypeError, match=f"'{name}'"):
        sess.run({name: x.astype(np.float64)})
    with pytest.raises(ArgumentError, match="missing input"):
        sess.run({})
    # A changed shape is refused, naming the input and the shape the plan was built for.
    bigger = np.concatenate([x, x])
    shape = re.escape(f"'{name}' must have shape {tuple(x.shape)}")
    with pytest.raises(ArgumentError, match=shape):
        sess.run({name: bigger})
    again = sess.run(good)  # and the plan still runs
    assert np.array_equal(again[0], sess.executor.run(good)[0])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_replay_screens_feeds_as_check_feeds_does(backend, tmp_path_factory):
    """The replay's own feed screen (``Executor.screened_feeds``, and the generated
    entry ``Executor._entry`` unrolling it) passes only what ``check_feeds`` passes; the
    rest goes through ``check_feeds`` itself."""
    from types import MappingProxyType

    sess = session("mlp", backend_or_skip(backend), tmp_path_factory)
    ex = sess.executor
    good = feeds(sess)
    name, x = next(iter(good.items()))
    sess.run(good)
    assert all(a is b for a, b in zip(ex.screened_feeds(good), good.values(), strict=True))
    huge = np.full(x.shape, 1e19, np.float32)  # finite, but x · x overflows to inf
    assert ex.screened_feeds({name: huge}) is not None
    assert ex._entry is not None and ex._entry({name: huge}) is not None
    assert np.array_equal(sess.run({name: huge})[0], ex.run({name: huge})[0])
    for value in (np.inf, -np.inf, np.nan):
        bad = x.copy()
        bad.flat[-1] = value
        assert ex.screened_feeds({name: bad}) is None and ex._entry({name: bad}) is None
        with pytest.raises(ArgumentError, match=f"'{name}' contains NaN or infinity"):
            sess.run({name: bad})
    for other in (MappingProxyType(good), {name: x.astype(np.float64)}, {name: x[None]},
                  {**good, "extra": x}, {name: list(x)}):
        assert ex.screened_feeds(other) is None  # check_feeds decides
        assert ex._entry(other) is None
    assert np.array_equal(sess.run(MappingProxyType(good))[0], sess.run(good)[0])
    with pytest.raises(ArgumentError, match="unknown input"):
        sess.run({**good, "extra": x})


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_values_checked_by_a_kernel_are_checked_on_every_run(backend, tmp_path_factory):
    """Gather's token ids sit at a host position: its checks read them, so the plan
    keeps its op function (numpy) or the cpu backend's ``_prepared_step`` (np.take's
    bounds check), and an id outside the table, above or below, is refused on a replay
    too; an id counted from the end reads what the normal path reads."""
    sess = session("gpt2", backend_or_skip(backend), tmp_path_factory)
    good = feeds(sess)
    sess.run(good)
    sess.run(good)
    assert ("H0(" in sess.executor.plan.source) == (backend == "cpu")
    for wrong in (10_000, -10_000, 50, -51):  # the table has 50 rows
        bad = {k: v.copy() for k, v in good.items()}
        bad["input_ids"][0, 0] = wrong
        with pytest.raises(ArgumentError, match="indices"):
            sess.run(bad)
    back = {k: v.copy() for k, v in good.items()}
    back["input_ids"][0, :] = [-1, -50, 49, 0, 7, -7, 3, 1]
    for a, b in zip(sess.run(back), sess.executor.run(back), strict=True):
        assert np.array_equal(a, b)


def test_tracing_leaves_the_backend_as_it_was(tmp_path_factory):
    sess = session("lenet", "numpy", tmp_path_factory)
    before = dict(vars(sess.backend))
    sess.run(feeds(sess))
    assert dict(vars(sess.backend)).keys() == before.keys()
    assert "replay" in sess.executor.plan.source


def test_check_finite_backends_and_plan_false_keep_every_check(tmp_path_factory):
    screened = hwbench.get_backend("numpy")  # check_finite=True: every kernel screens
    sess = session("lenet", screened, tmp_path_factory)
    f = feeds(sess)
    assert np.array_equal(sess.run(f)[0], sess.executor.run(f)[0])
    assert sess.executor.plan.prepared_steps == 0
    plain = session("lenet", "numpy", tmp_path_factory, plan=False)
    plain.run(f)
    assert plain.executor.plan is None


def test_profile_runs_the_normal_path(tmp_path_factory):
    sess = session("lenet", "numpy", tmp_path_factory, profile=True)
    sess.run(feeds(sess))
    assert sess.executor.plan is None and sess.op_seconds


def test_executor_overhead_measures_a_chain_of_trivial_ops():
    from hwbench.harness.measure.executor_overhead import measure_overhead, trivial_graph

    with pytest.raises(ArgumentError, match="'ops'"):
        trivial_graph(0)
    graph = trivial_graph(7)
    assert [n.op_type for n in graph.nodes] == ["Relu", "Add"] * 3 + ["Relu"]
    row = measure_overhead("numpy", ops=10, loops=1, repeats=1)
    assert row["ops"] == 10 and row["prepared_steps"] == 10  # no node fused or folded away
    assert row["bare_us_per_op"] > 0
    assert set(row) >= {"plan_overhead_us_per_op", "normal_overhead_us_per_op"}


class _Sub(np.ndarray):
    """Not an exact ndarray: ``address`` takes its slower ways."""


@pytest.mark.parametrize("kind", ["ndarray", "subclass"])
def test_cpu_data_addresses_match_numpy(kind):
    from hwbench.backends.cpu import addresses

    assert addresses._OFFSET is not None  # the struct field is read on this build
    base = np.arange(64, dtype=np.float32).reshape(8, 8)
    if kind == "subclass":
        base = base.view(_Sub)
    frozen = base[1:]
    frozen.flags.writeable = False
    from_bytes = np.frombuffer(base.tobytes(), np.float32)[5:]
    cases = [base, base[2:], base.T, base[:, ::2], base[::-1], np.empty(0, np.float32),
             frozen, from_bytes, np.ones((), np.float32), base.astype(np.uint8)[3:]]
    for a in cases:
        assert addresses.address(a) == a.ctypes.data
        assert addresses.address(a) == a.ctypes.data  # remembered for the read-only view
    key = id(frozen)
    assert (key in addresses._frozen) == (kind == "subclass")  # the slow way's cache
    del frozen, cases
    assert key not in addresses._frozen  # forgotten with its array


@pytest.fixture(scope="module")
def node_cases(onnx_node_cases):
    return onnx_node_cases


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_replay_equals_the_normal_path_on_onnx_node_tests(backend, node_cases):
    """Every ONNX node test the graph layer runs, with a session's backend (kernels
    prepared): traced, then replayed, bit for bit what the normal path gives (or the
    same error)."""
    from test_onnx_node_graph import NAMES, _arrays

    from hwbench.graph.onnx_import import load_onnx
    from hwbench.graph.passes import fold_constants, set_output_shapes
    from hwbench.models import Model

    backend_or_skip(backend)
    checked = prepared = chained = 0
    for name in NAMES:
        case = node_cases[name]
        graph = set_output_shapes(fold_constants(load_onnx(case.model)))
        try:
            sess = hwbench.Session(Model(name, graph), backend=backend)
        except hwbench.HwbenchError:
            continue  # refused before running: nothing to replay
        inputs, _ = case.data_sets[0]
        feeds = dict(zip(graph.input_names, _arrays(inputs), strict=True))
        try:
            expected = sess.executor.run(feeds)
        except hwbench.HwbenchError as exc:
            for _ in range(2):  # the traced run, then the replay: the same refusal
                with pytest.raises(type(exc)):
                    sess.run(feeds)
            continue
        for _ in range(3):  # traced, replayed, then chained where it chains (graph/chain.py)
            got = sess.run(feeds)
            for a, b in zip(got, expected, strict=True):
                assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name
        checked += 1
        prepared += sess.executor.plan.prepared_steps
        chained += sess.executor.chained
    assert checked > 200 and prepared > 150, (checked, prepared)  # most cases run
    assert chained > 50 or backend != "cpu", chained  # 64 on cpu when written


def test_replayed_feeds_are_private_read_only_copies(tmp_path_factory, monkeypatch):
    """``Backend.asarray_feed``: the cpu backend's feeds of a replay are copies nothing
    can make writable, not registered as frozen (nothing is kept per feed), unless
    ``check_finite`` caches NaN verdicts per array. (The plan's replay: LeNet's chained
    run, which reads a contiguous feed in place, is off here; test_graph_chain.py.)"""
    from hwbench.backends.frozen import can_be_made_writable
    from hwbench.graph import chain

    backend_or_skip("cpu")
    monkeypatch.setattr(chain, "CHAIN_MAX_BYTES", 0)
    sess = session("lenet", "cpu", tmp_path_factory)
    be, seen, f = sess.backend, [], feeds(sess)
    sess.run(f)  # traced (its feeds through ``asarray``); the recorder rewraps methods
    upload = be.asarray_feed
    be.asarray_feed = lambda x: seen.append((x, upload(x))) or seen[-1][1]
    for _ in range(2):
        sess.run(f)
    assert len(seen) == 2
    for user, copy in seen:
        assert not np.shares_memory(user, copy) and np.array_equal(user, copy)
        assert not can_be_made_writable(copy) and copy not in be.frozen
    screened = hwbench.get_backend("cpu", check_finite=True)
    assert screened.asarray_feed(f["input"]) in screened.frozen


def test_timed_transfers_keep_the_general_replay(tmp_path_factory):
    """``time_transfers=True`` synchronizes between phases: no generated entry (which
    does not), the same outputs."""
    sess = session("mlp", "numpy", tmp_path_factory, time_transfers=True)
    f = feeds(sess)
    for _ in range(2):
        assert np.array_equal(sess.run(f)[0], sess.executor.run(f)[0])
    assert sess.executor.plan is not None and sess.executor._entry is None
    assert set(sess.last_timings) == {"transfer_in_s", "compute_s", "transfer_out_s"}
