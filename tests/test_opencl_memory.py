"""What the opencl backend's memory pool holds across sessions and runs (issue 16: a
``hwbench run`` worker reached 10.5 GB at GPT-2 batch 8, every earlier model's buffers
still in its pool). Counted in pool bytes and blocks, not time: the garbage collector is
off in each test, so that only reference counting frees anything."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from backend_marks import needs_backend

from hwbench.models.model import load_model
from hwbench.models.session import Session, session_backend

pytestmark = needs_backend("opencl")


@pytest.fixture
def no_gc():
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _session(be, name: str = "lenet") -> tuple[Session, dict[str, np.ndarray]]:
    session = Session(load_model(name, batch=4), be)
    feeds = {n.name: np.random.default_rng(0).standard_normal(tuple(n.shape)).astype(
        np.float32) for n in session.get_inputs()}
    return session, feeds


def test_a_dropped_session_frees_its_device_arrays_at_once(no_gc):
    session, feeds = _session(session_backend("opencl"))
    be = session.backend  # plain opencl's choice of device for the graph: its pool
    session.run(feeds)
    session.run(feeds)
    assert be._pool.active_bytes > 0  # the weights
    del session
    assert be._pool.active_bytes == 0


def test_a_new_session_starts_from_a_trimmed_pool(no_gc):
    """The blocks and scratch an earlier session left go back to the device when the
    next one is built, so that a worker holds what one model needs, not the most of all."""
    session, feeds = _session(session_backend("opencl"))
    be = session.backend  # plain opencl's choice of device for the graph: its pool
    session.run(feeds)
    session.run(feeds)
    del session
    assert be._pool.held_blocks > 0 and be.gemm_engine.scratch._buffers
    session, feeds = _session(be, "mlp")
    assert be._pool.held_blocks == 0
    assert not be.gemm_engine.scratch._buffers


def test_the_traced_run_leaves_only_its_feeds_and_outputs_behind(no_gc):
    """The plan's traced run holds every value of the graph at once; what it leaves in
    the pool is trimmed, and replays then reuse their own blocks without growing it."""
    session, feeds = _session(session_backend("opencl"))
    be = session.backend  # plain opencl's choice of device for the graph: its pool
    reference = session.run(feeds)
    assert be._pool.held_blocks <= len(feeds) + len(reference)
    assert not be.gemm_engine.scratch._buffers
    session.run(feeds)
    steady = be._pool.managed_bytes
    for _ in range(3):
        for got, want in zip(session.run(feeds), reference, strict=True):
            np.testing.assert_array_equal(got, want)
    assert be._pool.managed_bytes == steady
