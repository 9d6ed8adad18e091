"""The cpu backend's RNN, GRU and LSTM on oneDNN's RNN primitives (forward inference):
``vanilla_rnn`` (tanh, relu/leaky relu, logistic), ``vanilla_lstm`` (with peepholes),
``vanilla_gru`` and ``lbr_gru`` (linear_before_reset=1), both directions in one primitive
(``bidirectional_concat``).

Per-batch sequence lengths run forward as one primitive per span between consecutive
distinct lengths (``_rnn_by_length``: exact, the state carried across spans); a reverse
pass as a forward one over each sequence's valid steps reversed (``_rnn_directions``).
Where oneDNN's cell does not match the problem (clip, input_forget, LSTM/GRU activations
other than the defaults, an RNN whose two directions use different functions) ``_rnn``
falls back to the lowering onto the backend's own GEMM and elementwise kernels
(``rnn_lowering``), on the same memory.

ONNX -> oneDNN: weights (D, G·H, I) -> ldigo (1, D, I, G, H) and recurrent weights
likewise, gates reordered (ONNX LSTM i, o, f, c -> oneDNN i, f, c̃, o; GRU z, r, h is
oneDNN's u, r, o); biases summed (Wb + Rb) to ldgo (1, D, G, H), lbr_gru's with a fourth
gate (Wbh and Rbh apart); peepholes (ONNX i, o, f) -> oneDNN's (i, f, o). The converted
weights are kept per frozen array (``asarray``'s copies), so a model converts them once.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import replace
from typing import Any

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.onednn import Primitive
from hwbench.kernels import spec

# DNNL_ARG_* (dnnl_types.h, oneDNN 3.x): macros, not in the library
ARG_SRC_LAYER, ARG_SRC_ITER, ARG_SRC_ITER_C = 1, 2, 3
ARG_DST_LAYER, ARG_DST_ITER, ARG_DST_ITER_C = 17, 18, 19
ARG_WEIGHTS_LAYER, ARG_WEIGHTS_ITER, ARG_WEIGHTS_PEEPHOLE, ARG_BIAS = 33, 34, 35, 41
LBR_GRU = 0x4fff  # dnnl_lbr_gru: above the range onednn.OneDNN reads its alg names from
# ONNX gate order -> oneDNN's, as indices into ONNX's gates
GATE_ORDER = {"lstm": (0, 2, 3, 1), "gru": (0, 1, 2), "rnn": (0,)}
PEEPHOLE_ORDER = (0, 2, 1)  # ONNX P: i, o, f -> oneDNN: i, f, o
RNN_ACTIVATION = {"tanh": "eltwise_tanh", "relu": "eltwise_relu",
                  "leakyrelu": "eltwise_relu", "sigmoid": "eltwise_logistic"}


def _declare(d: onednn.OneDNN) -> None:
    if getattr(d, "_rnn_declared", False):
        return
    v, i, f, u = ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_uint
    p = ctypes.POINTER(v)
    sigs = {
        # (pd, engine, prop, activation, direction, src_layer, src_iter, weights_layer,
        #  weights_iter, bias, dst_layer, dst_iter, flags, alpha, beta, attr)
        "dnnl_vanilla_rnn_forward_primitive_desc_create":
            [p, v, i, i, i, v, v, v, v, v, v, v, u, f, f, v],
        # (pd, engine, prop, direction, src_layer, src_iter, src_iter_c, weights_layer,
        #  weights_iter, weights_peephole, weights_projection, bias, dst_layer, dst_iter,
        #  dst_iter_c, flags, attr)
        "dnnl_lstm_forward_primitive_desc_create":
            [p, v, i, i, v, v, v, v, v, v, v, v, v, v, v, u, v],
        # (pd, engine, prop, direction, src_layer, src_iter, weights_layer, weights_iter,
        #  bias, dst_layer, dst_iter, flags, attr)
        "dnnl_gru_forward_primitive_desc_create": [p, v, i, i, v, v, v, v, v, v, v, u, v],
        "dnnl_lbr_gru_forward_primitive_desc_create": [p, v, i, i, v, v, v, v, v, v, v, u, v],
    }
    for name, argtypes in sigs.items():
        fn = getattr(d.lib, name)
        fn.argtypes, fn.restype = argtypes, ctypes.c_int
    fn = d.lib.dnnl_rnn_direction2str
    fn.restype, fn.argtypes = ctypes.c_char_p, [ctypes.c_int]
    d.rnn_direction = {fn(k).decode(): k for k in range(5)}
    d._rnn_declared = True


@functools.lru_cache(maxsize=256)
def native_kind(p: spec.RnnProblem) -> str | None:
    """The oneDNN cell that computes ``p`` exactly, or None (lowered instead)."""
    if p.clip is not None or p.input_forget:
        return None
    if p.cell == "rnn":
        acts = {(a.name, a.alpha) for a in p.activations}
        if len(acts) != 1 or next(iter(acts))[0] not in RNN_ACTIVATION:
            return None
        return "rnn"
    if not p.default_activations:
        return None
    if p.cell == "gru":
        return "lbr_gru" if p.linear_before_reset else "gru"
    return "lstm"


@functools.lru_cache(maxsize=256)
def _span(p: spec.RnnProblem, seq: int) -> spec.RnnProblem:
    """``p`` over ``seq`` steps, layout 0, no lengths: what one primitive runs (cached: a
    dataclass ``replace`` per call was a visible share of a one-step decoder's LSTM)."""
    return replace(p, seq=seq, layout=0, lengths=None)


class RnnPrimitive:
    """One oneDNN RNN primitive for a problem's sizes, with plain (ldigo, ldgo, tnc,
    ldnc) memory on every argument."""

    def __init__(self, d: onednn.OneDNN, p: spec.RnnProblem, kind: str) -> None:
        _declare(d)
        t, n, i, h, dirs = p.seq, p.batch, p.input_size, p.hidden, p.directions
        g = 4 if kind == "lbr_gru" else p.gates
        md = d.memory_desc
        src_layer, dst_layer = md((t, n, i), "f32"), md((t, n, dirs * h), "f32")
        state = md((1, dirs, n, h), "f32")
        w_layer, w_iter = md((1, dirs, i, p.gates, h), "f32"), md((1, dirs, h, p.gates, h), "f32")
        bias = md((1, dirs, g, h), "f32")
        direction = d.rnn_direction["bidirectional_concat" if dirs == 2 else
                                    "unidirectional_right2left" if p.direction == "reverse"
                                    else "unidirectional_left2right"]
        prop = d.prop["forward_inference"]
        attr = d.attr()
        args: dict[int, Any] = {ARG_SRC_LAYER: src_layer, ARG_SRC_ITER: state,
                                ARG_WEIGHTS_LAYER: w_layer, ARG_WEIGHTS_ITER: w_iter,
                                ARG_BIAS: bias, ARG_DST_LAYER: dst_layer, ARG_DST_ITER: state}
        common = (src_layer.handle, state.handle)
        if kind == "rnn":
            act = p.activations[0]
            pd = d.create_pd("dnnl_vanilla_rnn_forward_primitive_desc_create", d.engine, prop,
                             d.alg[RNN_ACTIVATION[act.name]], direction, *common,
                             w_layer.handle, w_iter.handle, bias.handle, dst_layer.handle,
                             state.handle, 0, act.alpha if act.name == "leakyrelu" else 0.0,
                             0.0, attr.handle)
        elif kind == "lstm":
            peep = md((1, dirs, 3, h), "f32") if p.has_peepholes else None
            pd = d.create_pd("dnnl_lstm_forward_primitive_desc_create", d.engine, prop,
                             direction, *common, state.handle, w_layer.handle, w_iter.handle,
                             peep.handle if peep else None, None, bias.handle,
                             dst_layer.handle, state.handle, state.handle, 0, attr.handle)
            args[ARG_SRC_ITER_C] = args[ARG_DST_ITER_C] = state
            if peep:
                args[ARG_WEIGHTS_PEEPHOLE] = peep
        else:
            fn = f"dnnl_{'lbr_gru' if kind == 'lbr_gru' else 'gru'}_forward_primitive_desc_create"
            pd = d.create_pd(fn, d.engine, prop, direction, *common, w_layer.handle,
                             w_iter.handle, bias.handle, dst_layer.handle, state.handle, 0,
                             attr.handle)
        self.prim = Primitive(d, pd, args)
        self.impl = self.prim.impl


def to_ldigo(w: np.ndarray, cell: str) -> np.ndarray:
    """ONNX (D, G·H, K) weights -> oneDNN's (1, D, K, G, H), gates in oneDNN's order."""
    dirs, gh, k = w.shape
    g = len(GATE_ORDER[cell])
    gates = np.asarray(w).reshape(dirs, g, gh // g, k)[:, list(GATE_ORDER[cell])]
    return np.ascontiguousarray(gates.transpose(0, 3, 1, 2)[None], np.float32)


def to_ldgo_bias(b: np.ndarray, cell: str, lbr: bool) -> np.ndarray:
    """ONNX (D, 2·G·H) biases -> oneDNN's (1, D, G, H) sums (lbr_gru: 4 gates, Rbh apart)."""
    dirs = b.shape[0]
    g = len(GATE_ORDER[cell])
    wb, rb = (np.asarray(v, np.float32).reshape(dirs, g, -1) for v in np.split(b, 2, axis=1))
    if lbr:
        out = np.concatenate([wb[:, :2] + rb[:, :2], wb[:, 2:], rb[:, 2:]], axis=1)
    else:
        out = (wb + rb)[:, list(GATE_ORDER[cell])]
    return np.ascontiguousarray(out[None], np.float32)


class RnnKernelsCpu:
    """``_rnn`` of ``CpuBackend``: oneDNN's primitive where it matches, else lowered."""

    def _rnn(self, p: spec.RnnProblem, x, w, r, b, initial_h, initial_c, peep):
        kind = native_kind(p)
        if kind is None:
            return super()._rnn(p, x, w, r, b, initial_h, initial_c, peep)
        n, h, dirs, cell = p.batch, p.hidden, p.directions, p.cell
        g = 4 if kind == "lbr_gru" else p.gates
        self.dnnl.set_num_threads(self._threads_now)
        x = np.asarray(self._plain(x))
        x = np.ascontiguousarray(x.transpose(1, 0, 2) if p.layout else x, np.float32)
        state_in = []
        for s in (initial_h, initial_c):
            if s is None:
                state_in.append(np.zeros((dirs, n, h), np.float32))
                continue
            s = np.asarray(self._plain(s))
            state_in.append(np.ascontiguousarray(s.transpose(1, 0, 2) if p.layout else s))
        weights = {
            ARG_WEIGHTS_LAYER: self._once_per_array(w, ("rnn-ldigo", cell),
                                                    lambda v: to_ldigo(v, cell)),
            ARG_WEIGHTS_ITER: self._once_per_array(r, ("rnn-ldigo", cell),
                                                   lambda v: to_ldigo(v, cell)),
            ARG_BIAS: (np.zeros((1, dirs, g, h), np.float32) if b is None else
                       self._once_per_array(b, ("rnn-bias", cell, kind == "lbr_gru"),
                                            lambda v: to_ldgo_bias(v, cell, kind == "lbr_gru"))),
        }
        if cell == "lstm" and peep is not None:
            weights[ARG_WEIGHTS_PEEPHOLE] = self._once_per_array(
                peep, "rnn-peephole", lambda v: np.ascontiguousarray(
                    np.asarray(v).reshape(dirs, 3, h)[:, list(PEEPHOLE_ORDER)][None]))
        plain = _span(p, p.seq)
        if p.lengths is None:
            y = np.empty((p.seq, n, dirs * h), np.float32)
            yh, yc = self._rnn_steps(plain, kind, weights, x, *state_in, y)
        elif p.direction == "forward":
            y, yh, yc = self._rnn_by_length(plain, kind, weights, x, *state_in, p.lengths)
        else:
            y, yh, yc = self._rnn_directions(plain, kind, weights, x, *state_in, p.lengths)
        y4 = y.reshape(p.seq, n, dirs, h)
        y_out = np.ascontiguousarray(y4.transpose(1, 0, 2, 3) if p.layout
                                     else y4.transpose(0, 2, 1, 3))
        states = [s if s is None or not p.layout else np.ascontiguousarray(s.transpose(1, 0, 2))
                  for s in (yh, yc)]
        return (y_out, states[0], states[1]) if cell == "lstm" else (y_out, states[0])

    def _rnn_steps(self, p: spec.RnnProblem, kind: str, weights: dict, x: np.ndarray,
                   h0: np.ndarray, c0: np.ndarray | None, y: np.ndarray) -> tuple:
        """One primitive over ``p.seq`` steps (layout 0, no lengths) from (h0, c0): Y
        written into ``y``; returns the final (h, c) (c None but for LSTM)."""
        prim = self._primitive(("rnn", kind, p.direction, p.seq, p.batch, p.input_size,
                                p.hidden, p.activations[0], p.has_peepholes),
                               lambda: RnnPrimitive(self.dnnl, p, kind)).prim
        yh = np.empty_like(h0)
        buffers = {**weights, ARG_SRC_LAYER: x, ARG_SRC_ITER: h0, ARG_DST_LAYER: y,
                   ARG_DST_ITER: yh}
        yc = None
        if p.cell == "lstm":
            yc = np.empty_like(h0)
            buffers[ARG_SRC_ITER_C], buffers[ARG_DST_ITER_C] = c0, yc
        prim.execute(buffers)
        return yh, yc

    def _rnn_by_length(self, p: spec.RnnProblem, kind: str, weights: dict, x: np.ndarray,
                       h0: np.ndarray, c0: np.ndarray | None, lengths: tuple) -> tuple:
        """A forward pass with per-batch lengths, exact: one primitive per span between
        two consecutive distinct lengths, the state carried from span to span; after the
        span that ends at an entry's length its (h, c) is kept as its Y_h/Y_c, and its Y
        past that step is zeroed (a forward state never reads later steps)."""
        n, h = p.batch, p.hidden
        ends = np.asarray(lengths)
        y = np.zeros((p.seq, n, h), np.float32)
        yh, yc = np.empty_like(h0), np.empty_like(h0) if p.cell == "lstm" else None
        hs, cs, start = h0, c0, 0
        copyto = np.copyto  # with where=: ~0.6 us a copy, boolean indexing ~3 (b8)
        for end in sorted(set(lengths)):
            hs, cs = self._rnn_steps(_span(p, end - start), kind, weights,
                                     x[start:end], hs, cs, y[start:end])
            done = (ends == end)[None, :, None]
            copyto(yh, hs, where=done)
            if yc is not None:
                copyto(yc, cs, where=done)
            start = end
        y[np.arange(p.seq)[:, None] >= ends[None, :]] = 0.0
        return y, yh, yc

    def _rnn_directions(self, p: spec.RnnProblem, kind: str, weights: dict, x: np.ndarray,
                        h0: np.ndarray, c0: np.ndarray | None, lengths: tuple) -> tuple:
        """A reverse or bidirectional pass with per-batch lengths: each direction as a
        forward pass by ``_rnn_by_length`` (oneDNN's weights hold the directions apart:
        a (1, 1, ...) slice of each is contiguous), the reverse one on each sequence's
        first ``length`` steps reversed, its Y reversed back: exact, since ONNX's reverse
        pass starts at each sequence's last valid step."""
        dirs, h = p.directions, p.hidden
        one = _direction_problem(p)
        flip = _reversal(p.seq, lengths)
        y = np.empty((p.seq, p.batch, dirs * h), np.float32)
        yh, yc = np.empty_like(h0), np.empty_like(h0) if p.cell == "lstm" else None
        for k in range(dirs):
            wk = {arg: v[:, k:k + 1] for arg, v in weights.items()}
            back = p.direction == "reverse" or k == 1
            xk = np.ascontiguousarray(np.take_along_axis(x, flip, 0)) if back else x
            yk, hk, ck = self._rnn_by_length(one, kind, wk, xk, h0[k:k + 1],
                                             None if c0 is None else c0[k:k + 1], lengths)
            y[:, :, k * h:(k + 1) * h] = np.take_along_axis(yk, flip, 0) if back else yk
            yh[k] = hk[0]
            if yc is not None:
                yc[k] = ck[0]
        return y, yh, yc


@functools.lru_cache(maxsize=256)
def _direction_problem(p: spec.RnnProblem) -> spec.RnnProblem:
    """One direction of ``p`` as a forward pass (its functions: the first direction's;
    ``native_kind`` admitted ``p`` only where both directions' are the same)."""
    count = len(p.activations) // p.directions
    return replace(p, direction="forward", activations=p.activations[:count])


def _reversal(seq: int, lengths: tuple) -> np.ndarray:
    """(seq, batch, 1) indices along time that reverse each sequence's first ``length``
    steps and keep the rest in place (the same map undoes itself)."""
    t = np.arange(seq)[:, None]
    ends = np.asarray(lengths)[None, :]
    return np.where(t < ends, ends - 1 - t, t)[:, :, None]
