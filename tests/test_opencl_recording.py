"""The recorded command list of a small graph on ``opencl`` (``backends/opencl/recording``):
taken for the digits models, the normal path's results bit for bit for other feeds than
the one it was recorded with, a fresh result every run, every feed still screened, one
wait per run, and refused where a feed stays on the host."""

from __future__ import annotations

import numpy as np
import pytest
from backend_marks import needs_backend
from plan_helpers import one_input_feeds, same_bytes

import hwbench
from hwbench.errors import ArgumentError

pytestmark = needs_backend("opencl")

MODELS = ["mlp", "autoencoder", "lenet"]


def _session(name: str, batch: int = 1) -> hwbench.Session:
    return hwbench.Session(hwbench.load_model(name, batch=batch), backend="opencl")


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("name", MODELS)
def test_recorded_bit_for_bit(name: str, batch: int) -> None:
    sess = _session(name, batch)
    f = one_input_feeds(sess, 0)
    sess.run(f)  # traced
    sess.run(f)  # the plan's first replay: the command list is recorded and checked
    assert sess.executor.recorded and not sess.executor.chained
    kept = []
    for seed in range(1, 4):
        f = one_input_feeds(sess, seed)
        got = sess.run(f)
        same_bytes(got, sess.executor.run(f))  # the normal path, every check
        kept.append(([g.copy() for g in got], got))
    for copies, got in kept:  # earlier results are never written by later runs
        same_bytes(got, copies)
    assert sess.executor.totals["runs"] == 8


def test_one_wait_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    sess = _session("lenet")
    cl = sess.backend.dev.cl
    blocking = []
    copy = cl.enqueue_copy

    def counted(*args, **kwargs):
        blocking.append(kwargs.get("is_blocking", True))
        return copy(*args, **kwargs)

    monkeypatch.setattr(cl, "enqueue_copy", counted)  # before the recording binds it
    f = one_input_feeds(sess, 0)
    for _ in range(3):
        sess.run(f)
    assert sess.executor.recorded
    want = sess.executor.run(f)
    blocking.clear()
    same_bytes(sess.run(f), want)
    assert blocking == [False, True]  # the feed written, the output read: the one wait


def test_feeds_still_screened() -> None:
    sess = _session("mlp")
    f = one_input_feeds(sess, 0)
    for _ in range(3):
        sess.run(f)
    assert sess.executor.recorded
    bad = {k: v.copy() for k, v in f.items()}
    next(iter(bad.values())).flat[3] = np.nan
    with pytest.raises(ArgumentError, match="NaN"):
        sess.run(bad)
    wrong = {k: v[..., :-1] for k, v in f.items()}
    with pytest.raises(ArgumentError, match="shape"):
        sess.run(wrong)
    strided = {k: np.asfortranarray(v) for k, v in f.items()}
    same_bytes(sess.run(strided), sess.executor.run(f))


@pytest.mark.parametrize("batch", [1, 2])
def test_feeds_on_the_host_recorded_per_value(batch: int) -> None:
    """The translator's decoder step keeps its token ids on the host (Gather's indices):
    at batch 1 (one id) it is recorded once per id value, at batch 2 once, each run making
    Gather's index table from its ids (``host_feeds``); either decodes as the normal
    path does. The encoder (33 host values: token ids and the LSTM's lengths) is recorded
    once, its masks and table made from each run's feeds."""
    from hwbench.harness.suites import translator_suite
    from hwbench.models.translator import export

    enc_model, step_model = translator_suite.case_models(batch)
    enc = hwbench.Session(enc_model, backend="opencl")
    step = hwbench.Session(step_model, backend="opencl")
    ref_enc = hwbench.Session(enc_model, backend="opencl", plan=False)
    ref_step = hwbench.Session(step_model, backend="opencl", plan=False)
    sources, _ = translator_suite._sentences(batch)
    for i in range(0, 6 * batch, batch):
        feeds = export.source_feeds(sources[i:i + batch], translator_suite.SEQUENCE)
        np.testing.assert_array_equal(export.decode(enc.run, step.run, feeds),
                                      export.decode(ref_enc.run, ref_step.run, feeds))
    assert enc.executor.recorded and step.executor.recorded
    if batch == 1:
        keyed = step.executor._entry.__globals__["_D"]
        assert 1 < len(keyed.runs) <= 40 and not keyed.refused
    else:
        assert "_D" not in step.executor._entry.__globals__  # one recording, not per value


def test_weights_not_counted_against_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Session's weights are held anyway: a limit below them, above the rest, still
    records (Inception v1 at batch 1: 67 MB held, 27 MB of them weights)."""
    from hwbench.backends.opencl import recording

    sess = _session("mlp")
    weights = sum(int(w.nbytes) for w in sess.executor.graph.initializers.values())
    monkeypatch.setattr(recording, "RECORD_MAX_BYTES", weights // 2)
    f = one_input_feeds(sess, 0)
    sess.run(f)
    sess.run(f)
    assert sess.executor.recorded
    f = one_input_feeds(sess, 1)
    same_bytes(sess.run(f), sess.executor.run(f))
