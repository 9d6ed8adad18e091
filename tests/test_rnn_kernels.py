"""``rnn`` (ONNX RNN, GRU, LSTM) on every backend against the float64 reference: every
cell, direction and layout at odd sizes, with and without per-batch sequence lengths;
clip, input_forget, linear_before_reset, peepholes, absent optional inputs and every
activation the spec lists; the cpu backend's oneDNN primitives where they apply; numpy's
float32 reference loop; opencl's fused LSTM step; the systolic array's GEMM cycles;
nothing read back to the host mid-op; the argument checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from tolerances import assert_close

from hwbench.backends import get_backend
from hwbench.errors import ArgumentError, DTypeError, UnsupportedError
from hwbench.kernels import rnn_reference as ref
from hwbench.kernels.spec import RNN_ACTIVATIONS, check_rnn
from hwbench.pytest_plugin import availability

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
SIZES = dict(seq=5, batch=3, input_size=7, hidden=5)


def make(rng, cell, direction="forward", layout=0, *, seq=5, batch=3, input_size=7, hidden=5,
         bias=True, initial=True, peepholes=True):
    """ONNX-shaped inputs [x, w, r, b, initial_h, initial_c, p] (None where left out)."""
    d = 2 if direction == "bidirectional" else 1
    g = GATES[cell]
    x = rng.standard_normal((batch, seq, input_size) if layout else (seq, batch, input_size))
    w = 0.5 * rng.standard_normal((d, g * hidden, input_size))
    r = 0.5 * rng.standard_normal((d, g * hidden, hidden))
    state = (batch, d, hidden) if layout else (d, batch, hidden)
    b = rng.standard_normal((d, 2 * g * hidden)) if bias else None
    h0 = rng.standard_normal(state) if initial else None
    c0 = rng.standard_normal(state) if initial and cell == "lstm" else None
    p = rng.standard_normal((d, 3 * hidden)) if peepholes and cell == "lstm" else None
    return [None if v is None else v.astype(np.float32) for v in (x, w, r, b, h0, c0, p)]


def check(be, args, lengths=None, **attrs):
    """Run ``rnn`` on ``be`` and compare every output with the float64 reference."""
    x, w, r, b, h0, c0, p = args
    dev = [None if v is None else be.asarray(v) for v in args]
    lens = None if lengths is None else np.asarray(lengths, np.int32)
    outs = be.rnn(*dev[:4], lens, *dev[4:], **attrs)
    problem = check_rnn(x, w, r, b, lens, h0, c0, p, **attrs)
    want = [v for v in ref.rnn(problem, x, w, r, b, h0, c0, p) if v is not None]
    assert len(outs) == len(want)
    for got, expected in zip(outs, want, strict=True):
        assert_close(be.to_numpy(got), expected, k=problem.input_size + problem.hidden,
                     dtype=np.float32, backend=be)
    return problem, [be.to_numpy(o) for o in outs]


@pytest.mark.parametrize("cell,direction,layout", list(itertools.product(
    GATES, ("forward", "reverse", "bidirectional"), (0, 1))))
def test_rnn_matches_reference(backend, rng, cell, direction, layout):
    args = make(rng, cell, direction, layout)
    check(backend, args, cell=cell, direction=direction, layout=layout, hidden_size=5)
    problem, (y, yh, *_) = check(backend, args, [5, 2, 1], cell=cell, direction=direction,
                                 layout=layout)
    # past a sequence's end Y is zero; Y_h is the state at its last valid step
    y_tbdh = y.transpose(1, 2, 0, 3) if layout else y
    assert not np.any(y_tbdh[2:, :, 1]) and not np.any(y_tbdh[1:, :, 2])
    assert np.any(y_tbdh[1, :, 1])
    forward_last = y_tbdh[1, 0, 1] if direction != "reverse" else y_tbdh[0, 0, 1]
    yh_dbh = yh.transpose(1, 0, 2) if layout else yh
    np.testing.assert_array_equal(yh_dbh[0, 1], forward_last)


@pytest.mark.parametrize("cell", GATES)
def test_optional_inputs_absent(backend, rng, cell):
    args = make(rng, cell, "bidirectional", bias=False, initial=False, peepholes=False,
                seq=3, batch=1, input_size=1, hidden=1)
    check(backend, args, cell=cell, direction="bidirectional")


def test_lstm_attributes(backend, rng):
    args = make(rng, "lstm", "bidirectional")
    check(backend, args, [3, 5, 4], cell="lstm", direction="bidirectional", clip=0.6)
    check(backend, args, cell="lstm", direction="bidirectional", input_forget=True)
    check(backend, args, cell="lstm", direction="bidirectional",
          activations=["HardSigmoid", "Softsign", "ScaledTanh", "Sigmoid", "Elu", "Affine"],
          activation_alpha=[0.3, 0.7, 0.9, 0.5], activation_beta=[0.4, 1.3, 0.2])


def test_gru_attributes(backend, rng):
    args = make(rng, "gru", "bidirectional", 1)
    check(backend, args, [2, 5, 1], cell="gru", direction="bidirectional", layout=1,
          linear_before_reset=True)
    check(backend, args, cell="gru", direction="bidirectional", layout=1, clip=0.4,
          linear_before_reset=True, activations=["Sigmoid", "LeakyRelu", "HardSigmoid",
                                                 "Softplus"], activation_alpha=[0.2, 0.3])


@pytest.mark.parametrize("name", sorted(RNN_ACTIVATIONS))
def test_every_activation(backend, rng, name):
    args = make(rng, "rnn", "reverse")
    check(backend, args, cell="rnn", direction="reverse", activations=[name])
    check(backend, args, cell="rnn", direction="reverse", activations=[name],
          activation_alpha=[0.7], activation_beta=[0.3])


def test_nothing_read_back_mid_op(backend, rng, monkeypatch):
    """The whole op runs on the device: no ``to_numpy`` between its kernels."""
    args = make(rng, "lstm", "bidirectional", 1)
    dev = [backend.asarray(v) for v in args]

    def refuse(x):
        raise AssertionError("rnn read a device array back to the host")

    monkeypatch.setattr(backend, "to_numpy", refuse)
    for lengths in (None, np.array([5, 3, 2], np.int32)):
        backend.rnn(*dev[:4], lengths, *dev[4:], cell="lstm", direction="bidirectional",
                    layout=1, clip=3.0)


def test_cpu_runs_onednn_rnn_primitives(rng, monkeypatch):
    """Default configurations run one oneDNN RNN primitive each (with lengths: one per
    span between distinct lengths, per direction); the rest lower."""
    ok, why = availability("cpu")
    if not ok:
        pytest.skip(f"backend cpu unavailable: {why}")
    from hwbench.backends import rnn_interface
    from hwbench.backends.cpu import rnn as cpu_rnn

    be = get_backend("cpu")
    seen, lowered = [], []
    real, real_lowered = cpu_rnn.RnnPrimitive.__init__, rnn_interface.run_lowered

    def spy(self, d, p, kind):
        seen.append((kind, p.direction, p.seq))
        real(self, d, p, kind)

    monkeypatch.setattr(cpu_rnn.RnnPrimitive, "__init__", spy)
    monkeypatch.setattr(rnn_interface, "run_lowered",
                        lambda *a: lowered.append(1) or real_lowered(*a))
    for cell, extra in (("rnn", {}), ("gru", {}), ("gru", {"linear_before_reset": True}),
                        ("lstm", {}), ("rnn", {"activations": ["LeakyRelu"] * 2})):
        check(be, make(rng, cell, "bidirectional"), cell=cell, direction="bidirectional",
              **extra)
    assert [k for k, _, _ in seen] == ["rnn", "gru", "lbr_gru", "lstm", "rnn"]
    # forward lengths: one primitive per span between distinct lengths (1, 1, 3 steps)
    check(be, make(rng, "lstm", batch=4), [5, 1, 2, 2], cell="lstm")
    assert seen[5:] == [("lstm", "forward", 1), ("lstm", "forward", 3)]
    check(be, make(rng, "gru", layout=1), [3, 5, 3], cell="gru", layout=1)
    assert seen[7:] == [("gru", "forward", 3), ("gru", "forward", 2)]
    # reverse and bidirectional with lengths: forward passes over reversed sequences
    for direction in ("reverse", "bidirectional"):
        check(be, make(rng, "lstm", direction, 1), [4, 1, 2], cell="lstm",
              direction=direction, layout=1)
    assert seen[9:] == [("lstm", "forward", 1), ("lstm", "forward", 2)]  # then cached
    assert not lowered
    check(be, make(rng, "gru"), cell="gru", clip=1.0)
    assert len(seen) == 11 and len(lowered) == 1


@pytest.mark.parametrize("whole", [False, True], ids=["per-step", "sequence"])
@pytest.mark.parametrize("direction,layout", list(itertools.product(
    ("forward", "reverse", "bidirectional"), (0, 1))))
def test_opencl_fused_lstm_step(rng, monkeypatch, direction, layout, whole):
    """opencl runs an LSTM step with the default functions as one ``_lstm_cell`` launch
    (gates, cell update, sequence-end selects), or a small cell's whole direction as one
    ``_lstm_sequence`` launch: the reference's answers with and without lengths;
    peepholes or clip keep the elementwise kernels."""
    ok, why = availability("opencl")
    if not ok:
        pytest.skip(f"backend opencl unavailable: {why}")
    be = get_backend("opencl")
    calls = []
    name = "_lstm_sequence" if whole else "_lstm_cell"
    real = getattr(be, name)
    monkeypatch.setattr(be, name, lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(be, "_lstm_sequence_fits", lambda batch, hidden: whole)
    args = make(rng, "lstm", direction, layout, peepholes=False)
    check(be, args, cell="lstm", direction=direction, layout=layout)
    check(be, args, [5, 2, 1], cell="lstm", direction=direction, layout=layout)
    launches = (1 if whole else 5) * (2 if direction == "bidirectional" else 1)
    assert len(calls) == 2 * launches
    check(be, make(rng, "lstm", direction, layout), cell="lstm", direction=direction,
          layout=layout)  # peepholes
    check(be, args, cell="lstm", direction=direction, layout=layout, clip=0.5)
    assert len(calls) == 2 * launches


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_opencl_lstm_sequence_more_state_than_work_items(rng, direction):
    """``_lstm_sequence`` with batch x hidden (9 x 16) over its 64 work-items: each
    handles several state entries per step, lengths mixed."""
    ok, why = availability("opencl")
    if not ok:
        pytest.skip(f"backend opencl unavailable: {why}")
    be = get_backend("opencl")
    args = make(rng, "lstm", direction, 0, batch=9, hidden=16, seq=6, peepholes=False)
    check(be, args, cell="lstm", direction=direction)
    check(be, args, [6, 1, 3, 6, 2, 5, 4, 6, 1], cell="lstm", direction=direction)


def test_numpy_runs_the_reference_code_in_float32(rng, monkeypatch):
    """numpy's rnn is the reference's loop in float32, not the generic lowering (whose
    ~25 checked kernel calls a step made it the translator's bottleneck), its outputs
    float32 and contiguous as every kernel's."""
    from hwbench.backends import rnn_interface

    def refuse(*args, **kwargs):
        raise AssertionError("numpy rnn went through the generic lowering")

    monkeypatch.setattr(rnn_interface, "run_lowered", refuse)
    be = get_backend("numpy")
    for cell in GATES:
        _, outs = check(be, make(rng, cell, "bidirectional", 1), [2, 5, 1], cell=cell,
                        direction="bidirectional", layout=1)
        assert all(o.dtype == np.float32 and o.flags.c_contiguous for o in outs)


def test_systolic_counts_the_gemms_on_the_array(rng):
    be = get_backend("systolic")
    be.reset_counters()
    check(be, make(rng, "lstm", "bidirectional"), cell="lstm", direction="bidirectional")
    counters = be.simulated_counters()
    macs = 2 * (5 * 3 * 7 * 20 + 5 * 3 * 5 * 20)  # per direction: X·Wᵀ once, H·Rᵀ per step
    assert counters["macs"] == macs
    assert counters["cycles"] > 0 and counters["vector_cycles"] > 0


@pytest.mark.parametrize("call,error,match", [
    (lambda be, a: be.rnn(a[0], a[1][:, :-1], a[2], cell="lstm"), ArgumentError, "'w'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2][:, :, :-1], cell="lstm"), ArgumentError, "'w'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], cell="gru"), ArgumentError, "'w'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], cell="lstm", hidden_size=4), ArgumentError,
     "'hidden_size'=4"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], cell="lstm", activations=["Tanh", "Gelu",
                                                                       "Tanh"]),
     ArgumentError, "unknown function 'Gelu'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], cell="lstm", activations=["Tanh"]),
     ArgumentError, "'activations' must name 3"),
    (lambda be, a: be.rnn(a[0].astype(np.float64), a[1], a[2]), DTypeError, "'x'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], a[3][:, :4]), ArgumentError, "'b'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], direction="sideways"), ArgumentError,
     "'direction'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], layout=2), ArgumentError, "'layout'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], clip=-1.0), ArgumentError, "'clip'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], None, np.array([6, 1, 1], np.int32)),
     ArgumentError, "'sequence_lens'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], None, [5, 5, 5]), ArgumentError,
     "'sequence_lens'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], initial_h=a[4][:, :2]), ArgumentError,
     "'initial_h'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], cell="lstm", linear_before_reset=True),
     UnsupportedError, "'linear_before_reset'"),
    (lambda be, a: be.rnn(a[0], a[1], a[2], cell="nope"), ArgumentError, "'cell'"),
])
def test_bad_input_raises_named_error(backend, rng, call, error, match):
    args = make(rng, "lstm")
    with pytest.raises(error, match=match):
        call(backend, args)


def test_problem_counts():
    x, w, r = (np.zeros(s, np.float32) for s in ((5, 3, 7), (2, 20, 7), (2, 20, 5)))
    p = check_rnn(x, w, r, cell="lstm", direction="bidirectional")
    assert (p.y_shape, p.state_shape, p.directions, p.hidden) == ((5, 2, 3, 5), (2, 3, 5), 2, 5)
    assert p.flops >= 2 * 2 * 5 * 3 * 20 * (7 + 5)
    assert p.output_bytes == 4 * (5 * 2 * 3 * 5 + 2 * 2 * 3 * 5)
    q = check_rnn(x.transpose(1, 0, 2), w, r, cell="lstm", direction="bidirectional", layout=1,
                  activation_alpha=[0.5], activations=["LeakyRelu", "Tanh", "Elu"] * 2)
    assert q.y_shape == (3, 5, 2, 5) and q.activation(0, 0).alpha == 0.5
    assert q.activation(1, 0).alpha == 0.01 and q.activation(1, 2).alpha == 1.0


@pytest.mark.parametrize(("batch", "hidden"), [(8, 32), (80, 8), (3, 5), (1, 40)])
def test_opencl_lstm_sequence_eight_cells_a_work_item(rng, monkeypatch, batch, hidden):
    """A hidden size that is a multiple of 8 runs ``lstm_sequence8`` (float8 cells, the
    recurrent weights transposed into scratch), more cells than work-items (80 x 8)
    included, where there are cells enough for the transposition (not 7 steps of one row
    of 40); others ``lstm_sequence``: the reference's answers with lengths mixed."""
    ok, why = availability("opencl")
    if not ok:
        pytest.skip(f"backend opencl unavailable: {why}")
    be = get_backend("opencl")
    program = be._rnn_program()
    kernels = []
    real = program.launch
    monkeypatch.setattr(program, "launch", lambda name, *a, **k: kernels.append(name)
                        or real(name, *a, **k))
    args = make(rng, "lstm", "bidirectional", 0, batch=batch, hidden=hidden, seq=7,
                peepholes=False)
    lengths = [int(v) for v in rng.integers(1, 8, batch)]
    check(be, args, lengths, cell="lstm", direction="bidirectional")
    vector = hidden % 8 == 0 and 7 * batch * 5 >= hidden  # rnn.VECTOR_CELLS_PER_WEIGHT
    want = "lstm_sequence8" if vector else "lstm_sequence"
    assert kernels.count(want) == 2 and set(kernels) <= {want, "lstm_cell"}
