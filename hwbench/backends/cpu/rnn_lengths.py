"""A forward LSTM/GRU/RNN on fixed per-batch sequence lengths, as a compiled plan replays
it (``Backend._prepared_step``'s ``prepared_rnn``: the lengths are the traced ones).

``RnnKernelsCpu._rnn_by_length`` runs one primitive per span between consecutive distinct
lengths; on every call it converts nothing (weights are kept per array) but still looks
up each span's primitive, checks each buffer and builds the masks: the translator's
encoder (8 sentences, 7 distinct lengths) spent about as long in that Python as in the
primitives. Here the spans, their primitives bound to the converted weights
(``BoundPrimitive``), the rows each span finishes and the padding mask are settled once;
a call runs the same primitives on the same data in the same order (the same bits),
only swapping the activations' addresses. Where no final cell state is read (the
encoder's LSTM has no Y_c; GRU, RNN) one primitive runs to the longest length instead,
each Y_h read from Y (``_run_once``): the same bytes again, one call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu import rnn
from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.bound_primitive import BoundPrimitive

_F32 = np.dtype(np.float32)
_ndarray = np.ndarray


def _plain(x: Any, shape: tuple[int, ...]) -> bool:
    """A C-contiguous aligned float32 NumPy array of ``shape`` (read in place)."""
    return type(x) is _ndarray and x.dtype == _F32 and x.shape == shape \
        and x.flags.c_contiguous and x.flags.aligned


def lengths_runner(be: Any, p: Any, w: Any, r: Any, b: Any, peep: Any,
                   cell_state: bool = True) -> Callable[..., tuple | None] | None:
    """``run(x, h0, c0)`` -> ``_rnn``'s outputs for problem ``p`` (forward, layout 0,
    lengths given, oneDNN's cell, no peepholes) with these weights, or None for a call
    with other arguments (the caller runs the kernel); None where ``p`` is not that case.
    Without ``cell_state`` (an LSTM whose Y_c no one reads; GRU, RNN) one primitive runs
    to the longest length (``_run_once``); else one per span."""
    kind = rnn.native_kind(p)
    if kind is None or p.lengths is None or p.direction != "forward" or p.layout \
            or peep is not None or p.cell not in ("lstm", "gru", "rnn") or kind == "lbr_gru":
        return None
    cell, n, h, lstm = p.cell, p.batch, p.hidden, p.cell == "lstm"
    be.dnnl.set_num_threads(be._threads_now)  # the primitive cache's key, as the kernel's
    weights = {
        rnn.ARG_WEIGHTS_LAYER: be._once_per_array(w, ("rnn-ldigo", cell),
                                                  lambda v: rnn.to_ldigo(v, cell)),
        rnn.ARG_WEIGHTS_ITER: be._once_per_array(r, ("rnn-ldigo", cell),
                                                 lambda v: rnn.to_ldigo(v, cell)),
        rnn.ARG_BIAS: (np.zeros((1, 1, p.gates, h), np.float32) if b is None else
                       be._once_per_array(b, ("rnn-bias", cell, False),
                                          lambda v: rnn.to_ldgo_bias(v, cell, False))),
    }
    varying = (rnn.ARG_SRC_LAYER, rnn.ARG_SRC_ITER, rnn.ARG_DST_LAYER, rnn.ARG_DST_ITER)
    if lstm:
        varying += (rnn.ARG_SRC_ITER_C, rnn.ARG_DST_ITER_C)
    if not (lstm and cell_state):
        return _run_once(be, p, kind, weights, varying)
    ends = np.asarray(p.lengths)
    spans = []  # (x offset, y offset, bound primitive, rows ending here)
    start = 0
    for end in sorted(set(p.lengths)):
        prim = _primitive(be, p, kind, end - start)
        if set(prim.mds) != {*weights, *varying, rnn.onednn.ARG_SCRATCHPAD}:
            return None
        run = BoundPrimitive(prim, weights, varying).runner()
        spans.append((4 * start * n * p.input_size, 4 * start * n * h, run,
                      (ends == end)[None, :, None]))
        start = end
    padding = (np.arange(p.seq)[:, None] >= ends[None, :])[:, :, None]
    x_shape, s_shape = (p.seq, n, p.input_size), (1, n, h)
    checked = _inputs_check(x_shape, s_shape, lstm)
    # the state between spans: two pairs in turn (a span reads one and writes the other)
    carry = [np.empty(s_shape, np.float32) for _ in range(4)]
    carried = [address(a) for a in carry]
    copyto, zeros_like = np.copyto, np.zeros

    def run_spans(x: Any, h0: Any, c0: Any) -> tuple | None:
        states = checked(x, h0, c0)
        if states is None:
            return None
        h0, c0 = states
        y = zeros_like((p.seq, n, h), np.float32)
        yh = np.empty(s_shape, np.float32)
        yc = np.empty(s_shape, np.float32) if lstm else None
        a_x, a_y, a_h = address(x), address(y), address(h0)
        a_c = address(c0) if lstm else 0
        for k, (x_off, y_off, run, done) in enumerate(spans):
            j = 2 * (k % 2)
            hs, cs = carry[j], carry[j + 1]
            if lstm:
                run(a_x + x_off, a_h, a_y + y_off, carried[j], a_c, carried[j + 1])
                copyto(yc, cs, where=done)
            else:
                run(a_x + x_off, a_h, a_y + y_off, carried[j])
            copyto(yh, hs, where=done)
            a_h, a_c = carried[j], carried[j + 1]
        copyto(y, 0.0, where=padding)
        y_out = y.reshape(p.seq, 1, n, h)  # (seq, n, h) is ONNX's (seq, 1, n, h) as is
        return (y_out, yh, yc) if lstm else (y_out, yh)
    run_spans.kept = (weights, spans, carry)
    return run_spans


def _primitive(be: Any, p: Any, kind: str, seq: int) -> Any:
    """The cached primitive for ``seq`` steps of ``p`` (the kernel's key: the same one)."""
    sp = rnn._span(p, seq)
    return be._primitive(("rnn", kind, sp.direction, sp.seq, sp.batch, sp.input_size,
                          sp.hidden, sp.activations[0], sp.has_peepholes),
                         lambda: rnn.RnnPrimitive(be.dnnl, sp, kind)).prim


def _run_once(be: Any, p: Any, kind: str, weights: dict,
              varying: tuple) -> Callable[..., tuple | None] | None:
    """``lengths_runner``'s call where no final cell state is needed: one primitive to
    the longest length, each row's Y_h read from Y at its own last step (Y holds every
    step's h), then Y cleared past each length. The rows that ended run on, unread: the
    same recurrences as the spans' (the same bytes, tests/test_cpu_prepared_plain.py),
    one primitive call instead of one per distinct length (the translator's encoder at
    batch 8: seven)."""
    n, h, lstm = p.batch, p.hidden, p.cell == "lstm"
    prim = _primitive(be, p, kind, max(p.lengths))
    if set(prim.mds) != {*weights, *varying, rnn.onednn.ARG_SCRATCHPAD}:
        return None
    run = BoundPrimitive(prim, weights, varying).runner()
    ends = np.asarray(p.lengths)
    last, rows = ends - 1, np.arange(n)
    padding = (np.arange(p.seq)[:, None] >= ends[None, :])[:, :, None]
    x_shape, s_shape = (p.seq, n, p.input_size), (1, n, h)
    checked = _inputs_check(x_shape, s_shape, lstm)
    final = [np.empty(s_shape, np.float32) for _ in range(2)]  # written, never read
    a_hn, a_cn = (address(a) for a in final)
    copyto, zeros_like = np.copyto, np.zeros

    def run_once(x: Any, h0: Any, c0: Any) -> tuple | None:
        states = checked(x, h0, c0)
        if states is None:
            return None
        h0, c0 = states
        y = zeros_like((p.seq, n, h), np.float32)
        if lstm:
            run(address(x), address(h0), address(y), a_hn, address(c0), a_cn)
        else:
            run(address(x), address(h0), address(y), a_hn)
        yh = y[last, rows].reshape(s_shape)  # a fresh array
        copyto(y, 0.0, where=padding)
        y_out = y.reshape(p.seq, 1, n, h)
        return (y_out, yh, None) if lstm else (y_out, yh)
    run_once.kept = (weights, final)
    run_once.fixed = lambda x, h0, c0: _fixed_once(prim, weights, checked(x, h0, c0), x,
                                                   final, p)
    return run_once


def _fixed_once(prim: Any, weights: dict, states: tuple | None, x: Any, final: list,
                p: Any) -> tuple[Callable[[], None], tuple] | None:
    """``run_once``'s fixed form (``hwbench.graph.step_chain``): the primitive with every
    argument bound (X read in place, Y an array of its own, zeroed once), then each Y_h
    taken from Y and Y cleared past each length, as ``run_once`` does: the same bytes."""
    from hwbench.backends.cpu.bound_primitive import raw

    if states is None or not prim.dnnl.blocking:
        return None
    n, h, lstm = p.batch, p.hidden, p.cell == "lstm"
    y = np.zeros((p.seq, n, h), np.float32)
    yh = np.empty((1, n, h), np.float32)
    args = {**weights, rnn.ARG_SRC_LAYER: x, rnn.ARG_SRC_ITER: states[0],
            rnn.ARG_DST_LAYER: y, rnn.ARG_DST_ITER: final[0]}
    if lstm:
        args.update({rnn.ARG_SRC_ITER_C: states[1], rnn.ARG_DST_ITER_C: final[1]})
    call, check = raw(prim, args), prim.dnnl.check
    ends = np.asarray(p.lengths)
    index = (ends - 1) * n + np.arange(n)  # row (last step, batch) of Y as (seq * n, h)
    take = functools.partial(np.take, y.reshape(p.seq * n, h), index, axis=0,
                             out=yh.reshape(n, h))
    clear = functools.partial(np.copyto, y, 0.0,
                              where=(np.arange(p.seq)[:, None] >= ends[None, :])[:, :, None])

    def run() -> None:
        status = call()
        if status:
            check(status, "primitive_execute")
        take()
        clear()
    y_out = y.reshape(p.seq, 1, n, h)
    return run, ((y_out, yh, None) if lstm else (y_out, yh))


class RnnLengthsCpu:
    """``CpuBackend``'s hook for ``prepared_rnn``: a plan replays ``_rnn`` on its traced
    lengths through ``lengths_runner`` (not with ``fast_replay=False``, the A/B switch)."""

    def _rnn_lengths_runner(self, p: Any, w: Any, r: Any, b: Any, peep: Any,
                            cell_state: bool = True) -> Callable[..., tuple | None] | None:
        if not getattr(self, "fast_replay", True):
            return None
        return lengths_runner(self, p, w, r, b, peep, cell_state)


def _inputs_check(x_shape: tuple, s_shape: tuple, lstm: bool) -> Callable:
    """``checked(x, h0, c0)`` -> the initial states (zeros for a missing one, never
    written), or None where the inputs are not the traced plain float32 arrays."""
    zeros = np.zeros(s_shape, np.float32)

    def checked(x: Any, h0: Any, c0: Any) -> tuple | None:
        h0 = zeros if h0 is None else h0
        c0 = zeros if c0 is None and lstm else c0
        if not _plain(x, x_shape) or not _plain(h0, s_shape) \
                or (not _plain(c0, s_shape) if lstm else c0 is not None):
            return None
        return h0, c0
    return checked
