"""Plain ``opencl``'s per-Session device on PoCL (``backends/opencl/device_choice``): the
rule, small graphs on ``basic`` with the float64 reference's answers, big ones on
``pthread``, the choice recorded (Session, harness row, ``hwbench run``'s table), and one
device kept where the user named one or turned the choice off."""

from __future__ import annotations

import numpy as np
import pytest
from backend_marks import availability
from plan_helpers import one_input_feeds

import hwbench
from hwbench.backends.opencl import device_choice
from hwbench.backends.opencl.device_choice import GraphWork, prefers_basic
from hwbench.backends.reference import ReferenceBackend
from hwbench.errors import ArgumentError
from hwbench.harness.results.tables import backend_text

OK, WHY = availability("opencl")
needs_opencl = pytest.mark.skipif(not OK, reason=f"opencl backend unavailable: {WHY}")


def _pocl_pair() -> bool:
    from hwbench.backends.opencl import runtime
    entry = runtime.select(None)
    return device_choice.basic_partner(None, entry, True) is not None


needs_pair = pytest.mark.skipif(not OK or not _pocl_pair(),
                                reason="the default OpenCL device is not PoCL's pthread "
                                       "device with a basic one beside it")


@pytest.mark.parametrize(("work", "cores", "basic"), [
    (GraphWork(10_000, 20_000, 4), 2, True),             # mlp: fixed costs dominate
    (GraphWork(12_000_000, 400_000, 7), 2, True),        # BEGAN b8, near the break-even
    (GraphWork(700_000_000, 41_000_000, 39), 2, False),  # SqueezeNet b1: needs the cores
    (GraphWork(60_000_000, 1_000_000, 1), 2, False),     # one big launch: pthread
    (GraphWork(60_000_000, 1_000_000, 300), 2, True),    # the same work in 300 launches
    (GraphWork(700_000_000, 41_000_000, 39), 1, True),   # one core: nothing to share
])
def test_the_rule_weighs_work_against_pthreads_fixed_costs(work, cores, basic) -> None:
    assert prefers_basic(work, cores) is basic


def test_the_rule_follows_the_estimates() -> None:
    work = GraphWork(12_000_000, 400_000, 7)
    assert work.basic_seconds == pytest.approx(12e6 / device_choice.BASIC_FLOPS_PER_S
                                               + 4e5 / device_choice.BASIC_BYTES_PER_S)
    assert work.pthread_seconds(2) == pytest.approx(
        work.basic_seconds / 2 + device_choice.PTHREAD_WAIT_S + 7 * device_choice.PTHREAD_LAUNCH_S)


def test_the_table_shows_a_chosen_device() -> None:
    row = {"backend": "opencl", "device": "basic-AMD EPYC (chosen: small graph)"}
    assert backend_text(row) == "opencl [basic]"
    two = {"backend": "opencl", "device": "basic-X (chosen: small graph); pthread-X "
                                          "(chosen: large graph)"}
    assert backend_text(two) == "opencl [basic+pthread]"
    assert backend_text({"backend": "opencl:basic"}) == "opencl:basic"


@needs_opencl
def test_device_choice_must_be_a_bool() -> None:
    with pytest.raises(ArgumentError, match="device_choice"):
        hwbench.get_backend("opencl", device_choice="yes")


@needs_pair
@pytest.mark.parametrize("name", ["mlp", "lenet"])
@pytest.mark.parametrize("batch", [1, 8])
def test_small_graphs_run_on_basic_with_the_references_answers(name: str, batch: int) -> None:
    model = hwbench.load_model(name, batch=batch)
    sess = hwbench.Session(model, backend="opencl")
    assert sess.backend.dev.entry.pocl_basic and sess.backend.full_name == "opencl:basic"
    assert sess.device == f"{sess.backend.dev.entry.name} (chosen: small graph)"
    reference = hwbench.Session(model, backend=ReferenceBackend())
    for seed in range(2):  # the plan's first run, then its replays (recorded)
        feeds = one_input_feeds(sess, seed)
        want = reference.run(feeds)  # computed in float64
        for _ in range(2):
            for got, exact in zip(sess.run(feeds), want, strict=True):
                np.testing.assert_allclose(got, exact, rtol=1e-4, atol=1e-5)


@needs_pair
def test_sessions_of_one_backend_share_its_basic_backend() -> None:
    backend = hwbench.get_backend("opencl", check_finite=False)
    one = hwbench.Session(hwbench.load_model("mlp"), backend=backend)
    two = hwbench.Session(hwbench.load_model("autoencoder"), backend=backend)
    assert one.backend is two.backend is backend.device_choice.backend()
    assert one.backend is not backend and not one.backend.check_finite
    assert backend.info()["device_choice"] and not one.backend.info()["device_choice"]


@needs_pair
def test_a_graph_whose_work_outweighs_pthreads_costs_stays_on_pthread(monkeypatch) -> None:
    monkeypatch.setattr(device_choice, "PTHREAD_WAIT_S", 0.0)  # pthread costs nothing more:
    monkeypatch.setattr(device_choice, "PTHREAD_LAUNCH_S", 0.0)  # its cores always win
    sess = hwbench.Session(hwbench.load_model("lenet"), backend="opencl")
    assert not sess.backend.dev.entry.pocl_basic and sess.backend.full_name == "opencl"
    assert sess.device == f"{sess.backend.dev.entry.name} (chosen: large graph)"
    assert sess.device.startswith("pthread-")


@needs_pair
@pytest.mark.parametrize(("backend", "options", "env"), [
    ("opencl:0", {}, None), ("opencl:pthread", {}, None), ("opencl:basic", {}, None),
    ("opencl", {"device_choice": False}, None), ("opencl", {}, "0")])
def test_a_named_device_or_the_choice_turned_off_keeps_one_device(
        backend, options, env, monkeypatch) -> None:
    if env is not None:
        monkeypatch.setenv(device_choice.ENV, env)
    sess = hwbench.Session(hwbench.load_model("mlp"), backend=backend, **options)
    assert sess.device is None and sess.backend.device_choice is None
    assert sess.backend.full_name == backend
    assert sess.backend.dev.entry.pocl_basic == (backend == "opencl:basic")


@needs_pair
def test_the_harness_row_records_the_chosen_device() -> None:
    from hwbench.harness.suites import model_suite

    timing = {"repeats": 1, "min_time": 0.0, "max_time": 0.2}
    case = model_suite.ModelCase("mlp", 1, "fp32")
    chosen = model_suite.Runner({"backend": "opencl", "options": {"threads": 1},
                                 "timing": timing})
    row = chosen.run(case, None)
    assert row["status"] == "ok" and row["device"].startswith("basic-")
    assert row["device"].endswith("(chosen: small graph)")
    named = model_suite.Runner({"backend": "opencl:0", "options": {"threads": 1},
                                "timing": timing})
    assert "device" not in named.run(case, None)


@needs_pair
def test_a_session_on_one_device_trims_the_others_pool() -> None:
    """A worker running model after model holds what the current one needs on either
    device, not what an earlier model left in the other device's pool."""
    backend = hwbench.get_backend("opencl", check_finite=False)
    model = hwbench.load_model("lenet", batch=4)
    with pytest.MonkeyPatch.context() as patch:  # this one on pthread
        patch.setattr(device_choice, "PTHREAD_WAIT_S", 0.0)
        patch.setattr(device_choice, "PTHREAD_LAUNCH_S", 0.0)
        big = hwbench.Session(model, backend=backend)
    assert big.backend is backend
    big.run(one_input_feeds(big, 0))
    del big
    assert backend._pool.held_blocks > 0  # freed, kept for reuse
    small = hwbench.Session(model, backend=backend)
    assert small.backend is not backend and backend._pool.held_blocks == 0


@needs_pair
def test_a_sessions_backends_are_freed_by_reference_counting() -> None:
    """A Session that chose ``basic`` drops plain opencl's own backend, and a dropped
    Session its ``basic`` one, at once: no cycle between a backend and its choice (it
    kept both, a PoCL context each and the basic pool's blocks, until a gc pass)."""
    import gc
    import weakref
    gc.collect()
    gc.disable()
    try:
        backend = hwbench.get_backend("opencl", check_finite=False)
        owner = weakref.ref(backend)
        sess = hwbench.Session(hwbench.load_model("mlp"), backend=backend)
        basic = weakref.ref(sess.backend)
        assert basic() is not backend
        del backend
        assert owner() is None
        del sess
        assert basic() is None
    finally:
        gc.enable()
