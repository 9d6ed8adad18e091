"""The translator: its dates data, its gradients, its training and its shipped weights."""

from __future__ import annotations

import datetime
import functools

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.cli import main
from hwbench.datasets import dates
from hwbench.errors import ArgumentError, BackendUnavailableError, ResultsError
from hwbench.models import translator
from hwbench.models.translator import model as M
from hwbench.models.translator.training import Config

TINY = Config(hidden=16, batch_size=16, learning_rate=0.03)  # trains 128 dates in < 1 s


def _backend(name):
    try:
        return get_backend(name)
    except BackendUnavailableError as exc:
        pytest.skip(f"backend {name} unavailable: {exc}")


# -- the data ------------------------------------------------------------------------------

def test_sentences_are_deterministic_and_the_split_is_by_date():
    test_src, test_tgt = dates.sentences("test")
    assert len(test_src) == dates.SIZES["test"]
    assert dates.sentences("test") == (test_src, test_tgt)
    assert dates.sentences("test", seed=1) != (test_src, test_tgt)
    train_src, train_tgt = dates.sentences("train")
    assert not set(train_tgt) & set(test_tgt)  # no test date in any wording is trained on
    assert not set(train_src) & set(test_src)
    for src, tgt in zip(test_src[:200], test_tgt[:200], strict=True):
        day = datetime.date.fromisoformat(tgt)
        assert dates.FIRST <= day <= dates.LAST and src
        assert day.toordinal() % dates.TEST_EVERY == dates.TEST_RESIDUE


def test_every_format_writes_its_date_readably():
    day = datetime.date(2021, 3, 3)
    written = {name: write(day) for name, write in dates.FORMATS}
    assert written["en_mdy_ordinal"] == "March 3rd, 2021"
    assert written["fr_weekday"] == "mercredi 3 mars 2021"
    assert written["de"] == "3. März 2021"
    assert written["us_numeric_yy"] == "3/3/21"
    assert written["cjk"] == "2021年3月3日"
    assert written["iso"] == "2021-03-03"
    alphabet = set(dates.source_alphabet())
    sources, _ = dates.sentences("train", 3000, seed=4)
    assert all(set(s) <= alphabet for s in sources)  # no sentence needs the unknown id


def test_encoding_round_trips_and_rejects_bad_input():
    ids, lengths = dates.encode_sources(["3 mars 2021", "2021年3月3日"])
    assert ids.shape == (2, 11) and lengths.tolist() == [11, 9]
    assert (ids[1, 9:] == dates.PAD).all() and (ids[:, :9] >= 2).all()
    assert dates.encode_sources(["3 ∑"])[0][0, 2] == dates.UNKNOWN
    targets = ["2021-03-03", "1950-12-31"]
    encoded = dates.encode_targets(targets)
    assert encoded.shape == (2, dates.TARGET_LENGTH) and (encoded[:, -1] == dates.EOS).all()
    assert dates.decode_targets(encoded) == targets
    with pytest.raises(ArgumentError, match="'targets'"):
        dates.encode_targets(["3/3/21"])
    with pytest.raises(ArgumentError, match="'sources'"):
        dates.encode_sources([""])
    with pytest.raises(ArgumentError, match="'split'"):
        dates.sentences("validation")
    with pytest.raises(ArgumentError, match="'n'"):
        dates.sentences("test", n=0)


# -- gradients -----------------------------------------------------------------------------

def _small_problem(dtype=np.float64):
    rng = np.random.default_rng(0)
    params = M.init_params(7, 5, 4, seed=1)
    params = {k: (v + rng.normal(0, 0.3, v.shape)).astype(dtype) for k, v in params.items()}
    source = rng.integers(2, 7, (3, 6))
    lengths = np.array([6, 4, 2])
    source[1, 4:] = source[2, 2:] = dates.PAD
    return params, source, lengths, rng.integers(0, 5, (3, 4))


def test_backward_matches_finite_differences_in_float64():
    """Directional derivative of the loss vs <gradient, direction> for every parameter:
    the LSTM gates, the attention and the output layers."""
    ops = translator.Float64Ops()
    params, source, lengths, target = _small_problem()
    _, grads = M.loss_and_gradients(ops, params, source, lengths, target)
    rng = np.random.default_rng(2)
    eps = 1e-6
    for name in M.PARAM_NAMES:
        direction = rng.standard_normal(params[name].shape)
        shifted = [{**params, name: params[name] + sign * eps * direction}
                   for sign in (1, -1)]
        up, down = (M.loss_and_gradients(ops, p, source, lengths, target)[0] for p in shifted)
        numeric = (up - down) / (2 * eps)
        assert numeric == pytest.approx(float(np.vdot(grads[name], direction)),
                                        rel=1e-5, abs=1e-9), name


def test_padding_does_not_change_a_sentence_s_loss():
    ops = translator.Float64Ops()
    params, source, lengths, target = _small_problem()
    alone = M.loss_and_gradients(ops, params, source[2:, :2], lengths[2:], target[2:])[0]
    padded = M.loss_and_gradients(ops, params, source[2:], lengths[2:], target[2:])[0]
    assert alone == pytest.approx(padded, rel=1e-12)


def test_kernel_gradients_match_float64(backend):
    """The same loss and gradients through every backend's kernels (systolic's float GEMM
    runs in int8 on its array: a few percent off, as its inference is)."""
    params, source, lengths, target = _small_problem()
    ref_loss, ref = M.loss_and_gradients(translator.Float64Ops(), params, source, lengths,
                                         target)
    ops = translator.KernelOps(backend)
    loss, grads = M.loss_and_gradients(ops, {k: v.astype(np.float32) for k, v in
                                             params.items()}, source, lengths, target)
    tolerance = 0.1 if backend.name == "systolic" else 1e-5
    assert loss == pytest.approx(ref_loss, rel=tolerance)
    for key in M.PARAM_NAMES:
        assert grads[key].dtype == np.float32
        np.testing.assert_allclose(grads[key], ref[key], rtol=0,
                                   atol=tolerance * np.abs(ref[key]).max(), err_msg=key)


# -- training ------------------------------------------------------------------------------

def test_training_reduces_the_loss_and_is_reproducible():
    be = get_backend("numpy")
    a, report = translator.train(be, seed=3, epochs=4, config=TINY, train_size=128,
                                 evaluate_after=False)
    b, _ = translator.train(be, seed=3, epochs=4, config=TINY, train_size=128,
                            evaluate_after=False)
    c, _ = translator.train(be, seed=4, epochs=1, config=TINY, train_size=96,
                            evaluate_after=False)
    assert report.losses[-1] < 0.8 * report.losses[0]
    assert report.samples_per_second > 0 and report.epochs == 4
    for key in M.PARAM_NAMES:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["enc_wx"], c["enc_wx"])
    with pytest.raises(ArgumentError, match="'seed'"):
        translator.train(be, seed=-1)
    with pytest.raises(ArgumentError, match="'epochs'"):
        translator.train(be, epochs=0)


def test_hwbench_train_translator_writes_weights_and_reports(tmp_path, monkeypatch, capsys):
    quick = functools.partial(translator.train, config=TINY, train_size=32)
    monkeypatch.setattr(translator, "train", quick)
    out = tmp_path / "t.npz"
    assert main(["train", "--model", "translator", "--epochs", "1", "--output", str(out)]) == 0
    said = capsys.readouterr()
    text = said.out + said.err
    assert "samples/s" in text and "exact match" in text and "copy the input" in text
    params = translator.load_params(out)
    assert params["enc_wh"].shape == (16, 64)


def test_edit_distance():
    assert translator.edit_distance("2021-03-03", "2021-03-03") == 0
    assert translator.edit_distance("2021-03-0", "2021-03-03") == 1
    assert translator.edit_distance("", "abc") == 3
    assert translator.edit_distance("kitten", "sitting") == 3


# -- the shipped weights -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["numpy", "cpu"])
def test_shipped_weights_translate_the_test_split(name):
    scores = translator.evaluate(_backend(name), translator.load_params())
    assert scores.sentences == dates.SIZES["test"]
    assert scores.exact_match >= 0.95 and scores.cer <= 0.02
    assert scores.copy_exact_match < 0.1 and scores.frequent_exact_match == 0.0
    assert translator.SHIPPED.stat().st_size < 1_000_000


def test_shipped_weights_are_plain_arrays_and_files_are_checked(tmp_path):
    with np.load(translator.SHIPPED, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
    with pytest.raises(ResultsError, match="translator"):
        translator.load_params(tmp_path / "absent.npz")
    with pytest.raises(ResultsError, match="'lenet'"):
        translator.load_params(translator.SHIPPED.with_name("lenet.npz"))
    wrong = translator.init_params(5, 5, 4, seed=0)
    path = translator.save_params(tmp_path / "wrong.npz", wrong, {})
    with pytest.raises(ResultsError, match="enc_wx"):
        translator.load_params(path)


# -- ONNX export and the decoding loop -----------------------------------------------------

def _sessions(encoder, step, backend, batch, sequence):
    """hwbench Sessions of the two exported graphs at a fixed batch and sequence."""
    from hwbench import Session
    from hwbench.graph.onnx_import import load_onnx
    from hwbench.graph.passes import fold_constants, set_output_shapes
    from hwbench.models.model import Model

    def session(proto, name):
        graph = load_onnx(proto, batch=batch, dims={"sequence": sequence})
        return Session(Model(name, set_output_shapes(fold_constants(graph))), backend=backend)

    return session(encoder, "encoder"), session(step, "step")


def test_exported_onnx_decodes_as_the_training_code_on_onnxruntime_and_backends(backend):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime (pip install onnxruntime)")
    from hwbench.models.translator import export

    params = translator.load_params()
    encoder, step = export.encoder_onnx(params), export.decoder_step_onnx(params)
    sources, targets = dates.sentences("test", 48)
    feeds = export.source_feeds(sources, sequence=32)  # padded past the longest: no effect
    expected = M.translate_ids(translator.KernelOps(get_backend("numpy")), params,
                               feeds["source"], feeds["lengths"].astype(np.int64),
                               dates.TARGET_LENGTH)
    theirs = [ort.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"])
              for p in (encoder, step)]
    ids = export.decode(lambda f: theirs[0].run(None, f), lambda f: theirs[1].run(None, f),
                        feeds)
    np.testing.assert_array_equal(ids, expected)
    assert np.mean(np.array(dates.decode_targets(ids)) == np.array(targets)) >= 0.95
    if backend.name == "systolic":
        return  # int8 GEMMs: a few percent off; the shipped-weights test covers it
    ours = _sessions(encoder, step, backend, 48, 32)
    ids = export.decode(ours[0].run, ours[1].run, feeds)
    np.testing.assert_array_equal(ids, expected)


# -- hwbench run --model translator ----------------------------------------------------------

@pytest.mark.parametrize("engine", ["numpy", "onnxruntime", "torch"])
def test_the_model_suite_runs_the_decoding_loop(tmp_path, monkeypatch, engine):
    """A suite row: exact match and CER on test sentences, the characters' agreement with
    the float64 decoding, sentences/s and tokens/s of one batch's translation (torch: the
    ONNX LSTM as torch.nn.LSTM, lengths through pack_padded_sequence)."""
    from hwbench.harness.suites import model_suite, translator_suite

    if engine != "numpy":
        pytest.importorskip(engine, reason=f"{engine} is a peer (pip install 'hwbench[peers]')")
    monkeypatch.setattr(translator_suite, "ACCURACY_SENTENCES", 40)
    assert model_suite.expand_models("translator,mlp") == ["translator", "mlp"]
    (case,) = model_suite.plan(["translator"], [20], ["fp32"])
    paths = model_suite.reference_outputs(case, str(tmp_path), [20])
    job = {"backend": engine, "peer": engine != "numpy", "options": {"threads": 1},
           "timing": {"repeats": 1, "min_time": 0, "max_time": 0.05}}
    row = model_suite.make_runner(job).run(case, paths[20])
    assert row["status"] == "ok" and row["accuracy_samples"] == 40
    assert row["exact_match"] >= 0.95 and row["cer"] <= 0.02
    assert row["top1_agreement"] == 1.0  # every character the float64 decoding's
    steps = dates.TARGET_LENGTH
    assert row["tokens_per_s"] == pytest.approx(row["samples_per_s"] * steps)
    assert row["latency_per_token"] == pytest.approx(row["seconds"] / steps)
    assert row["flops"] > 0 and row["intensity"] > 0


def test_an_rnn_takes_a_second_thread_by_the_work_of_one_step(monkeypatch):
    """oneDNN's cell meets its threads at every time step: the encoder's LSTM at batch 8
    (7 MFLOP over 32 steps) stays on one thread even where spinning threads take any
    problem of 1 MFLOP (a GEMM of that size splits); a batch whose steps are big splits."""
    from hwbench.backends.cpu import backend as cpu_backend
    from hwbench.kernels import spec
    from hwbench.pytest_plugin import availability

    ok, why = availability("cpu")
    if not ok:
        pytest.skip(why)
    be = get_backend("cpu", threads=2)
    monkeypatch.setattr(type(be), "small_problem", property(lambda self: (
        cpu_backend.SPINNING_SMALL_PROBLEM_FLOPS, cpu_backend.SPINNING_SMALL_PROBLEM_BYTES)))

    def lstm(batch: int, hidden: int) -> spec.RnnProblem:
        x = np.zeros((32, batch, 76), np.float32)
        w = np.zeros((1, 4 * hidden, 76), np.float32)
        r = np.zeros((1, 4 * hidden, hidden), np.float32)
        return spec.check_rnn(x, w, r, hidden_size=hidden)

    encoder = lstm(8, 32)
    assert encoder.flops > cpu_backend.SPINNING_SMALL_PROBLEM_FLOPS > encoder.region_flops
    assert be.threads_for(encoder) == 1
    assert be.threads_for(lstm(64, 256)) == 2
    a = np.zeros((128, 128), np.float32)
    assert be.threads_for(spec.check_gemm(a, a)) == 2  # 4 MFLOP
