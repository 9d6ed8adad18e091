"""RNN, GRU and LSTM lowered onto a backend's own kernels, on its device: the input
projection of every time step is one GEMM (X·Wᵀ over the whole sequence, biases added),
the recurrent projection one GEMM per step (GRU with linear_before_reset=0: two, since
its candidate reads r⊙H), the gates the backend's elementwise kernels (sigmoid, relu,
unary, add, mul, binary, compare/where), the steps' outputs one concat at the end.

Nothing leaves the device between steps: sequence lengths become 0/1 masks uploaded once,
and ``where`` keeps a finished sequence's state and zeroes its outputs. A backend with
``_lstm_cell`` (opencl) runs an LSTM step with the default functions as that one kernel
after the recurrent GEMM (``fused_lstm``), and with ``_lstm_sequence`` a small cell's
whole direction as one launch. The masks and zero initial states are per-run data, given
to the backend as feeds are (``asarray_feed``: on opencl written without a wait).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.kernels import spec
from hwbench.kernels.spec.rnn import RnnActivation, RnnProblem


class _Ops:
    """The backend's private kernels, each called as its public method would (argument
    check, ``_begin_kernel``), without re-screening intermediates for NaN."""

    def __init__(self, be: Any) -> None:
        self.be = be
        self._consts: dict[float, Any] = {}

    def const(self, value: float) -> Any:
        if value not in self._consts:
            self._consts[value] = self.be.asarray(np.full((1,), value, np.float32))
        return self._consts[value]

    def _call(self, name: str, problem: Any, fn: Any, *args: Any) -> Any:
        self.be._begin_kernel(name, problem)
        return fn(problem, *args)

    def gemm(self, a, b, bias=None):
        return self._call("gemm", spec.check_gemm(a, b, bias, False, True), self.be._gemm,
                          a, b, bias)

    def add(self, a, b):
        return self._call("add", spec.check_binary(a, b, "add"), self.be._add, a, b)

    def mul(self, a, b):
        return self._call("mul", spec.check_binary(a, b, "mul"), self.be._mul, a, b)

    def binary(self, a, b, op: str):
        return self._call("binary", spec.check_binary_op(a, b, op), self.be._binary_op, a, b)

    def unary(self, x, op: str, alpha=None, beta=None):
        return self._call("unary", spec.check_unary_op(x, op, alpha, beta),
                          self.be._unary_op, x)

    def sigmoid(self, x):
        return self._call("sigmoid", spec.check_unary(x, "x", "sigmoid"), self.be._sigmoid, x)

    def relu(self, x):
        return self._call("relu", spec.check_unary(x, "x", "relu"), self.be._relu, x)

    def where(self, cond, x, y):
        return self._call("where", spec.check_where(cond, x, y), self.be._where, cond, x, y)

    def compare(self, a, b, op: str):
        return self._call("compare", spec.check_compare(a, b, op), self.be._compare, a, b)

    def slice(self, x, start: int, end: int, axis: int):
        if start == 0 and end == x.shape[axis]:  # one direction's weights: all of them
            return x
        return self._call("slice", spec.check_slice(x, [start], [end], [axis], None),
                          self.be._slice, x)

    def reshape(self, x, shape):
        return self._call("reshape", spec.check_reshape(x, shape), self.be._reshape, x)

    def transpose(self, x, perm):
        return self._call("transpose", spec.check_transpose(x, perm), self.be._transpose, x)

    def concat(self, arrays: list, axis: int):
        if len(arrays) == 1:
            return arrays[0]
        return self._call("concat", spec.check_concat(arrays, axis), self.be._concat, arrays)

    def activation(self, a: RnnActivation, x, clip: float | None):
        """One of ``spec.RNN_ACTIVATIONS`` on the backend's elementwise kernels."""
        if clip is not None:
            x = self.unary(x, "clip", -clip, clip)
        n = a.name
        if n == "sigmoid":
            return self.sigmoid(x)
        if n == "relu":
            return self.relu(x)
        if n in ("tanh", "softplus"):
            return self.unary(x, n)
        if n == "leakyrelu":
            return self.unary(x, "leaky_relu", a.alpha)
        if n == "elu":
            return self.unary(x, "elu", a.alpha)
        if n == "hardsigmoid":
            return self.unary(x, "hard_sigmoid", a.alpha, a.beta)
        if n == "affine":
            return self.add(self.mul(x, self.const(a.alpha)), self.const(a.beta))
        if n == "scaledtanh":
            return self.mul(self.unary(self.mul(x, self.const(a.beta)), "tanh"),
                            self.const(a.alpha))
        if n == "thresholdedrelu":
            return self.where(self.compare(x, self.const(a.alpha), "greater"), x,
                              self.const(0.0))
        if n == "softsign":
            return self.binary(x, self.add(self.unary(x, "abs"), self.const(1.0)), "div")
        raise AssertionError(n)  # spec.check_rnn admits no other name


def fused_lstm(be: Any, p: RnnProblem) -> bool:
    """Whether ``be._lstm_cell`` (a backend's one-launch LSTM step: gates, cell update
    and sequence-end selects) computes ``p``'s steps: ONNX's default functions, no clip
    or input_forget (peepholes: checked per direction)."""
    return (hasattr(be, "_lstm_cell") and p.cell == "lstm" and p.default_activations
            and p.clip is None and not p.input_forget)


def _direction(ops: _Ops, p: RnnProblem, k: int, xr, w, r, b, h0, c0, peep, masks):
    """One direction: its outputs per step (T, 1, B, H), final h and c (1, B, H)."""
    g, h, bsz, seq = p.gates, p.hidden, p.batch, p.seq
    wk = ops.reshape(ops.slice(w, k, k + 1, 0), (g * h, p.input_size))
    rk = ops.reshape(ops.slice(r, k, k + 1, 0), (g * h, h))
    bias_in = rbh = None
    if b is not None:
        bk = ops.reshape(ops.slice(b, k, k + 1, 0), (2 * g * h,))
        wb, rb = ops.slice(bk, 0, g * h, 0), ops.slice(bk, g * h, 2 * g * h, 0)
        if p.cell == "gru" and p.linear_before_reset:  # Rbh stays inside r ⊙ (...)
            keep = np.ones(g * h, np.float32)
            keep[2 * h:] = 0
            rbh = ops.slice(rb, 2 * h, 3 * h, 0)
            rb = ops.mul(rb, ops.be.asarray(keep))
        bias_in = ops.add(wb, rb)
    xw = ops.gemm(xr, wk, bias_in)  # (T·B, G·H): every step's input projection at once
    rk_zr = rk_h = None
    if p.cell == "gru" and not p.linear_before_reset:
        rk_zr, rk_h = ops.slice(rk, 0, 2 * h, 0), ops.slice(rk, 2 * h, 3 * h, 0)
    pi = po = pf = None
    if peep is not None:
        pk = ops.reshape(ops.slice(peep, k, k + 1, 0), (3 * h,))
        pi, po, pf = (ops.slice(pk, j * h, (j + 1) * h, 0) for j in range(3))
    state = (bsz, h)
    hs = (ops.reshape(ops.slice(h0, k, k + 1, 0), state) if h0 is not None
          else ops.be.asarray_feed(np.zeros(state, np.float32)))
    cs = None
    if p.cell == "lstm":
        cs = (ops.reshape(ops.slice(c0, k, k + 1, 0), state) if c0 is not None
              else ops.be.asarray_feed(np.zeros(state, np.float32)))

    def act(index: int, v, clip=p.clip):
        return ops.activation(p.activation(k, index), v, clip)

    def cols(v, j: int, n: int = 1):
        return ops.slice(v, j * h, (j + n) * h, 1)

    reverse = p.direction == "reverse" or k == 1
    fused = fused_lstm(ops.be, p) and pi is None
    if fused and hasattr(ops.be, "_lstm_sequence") and ops.be._lstm_sequence_fits(bsz, h):
        y, hs, cs = ops.be._lstm_sequence(xw, rk, hs, cs, None if masks is None else
                                          ops.be.asarray_feed(masks), reverse)
        return (ops.reshape(y, (seq, 1, bsz, h)), ops.reshape(hs, (1, bsz, h)),
                ops.reshape(cs, (1, bsz, h)))
    if masks is not None:  # per-run data, as a feed is (opencl: written without a wait)
        masks = [ops.be.asarray_feed(np.ascontiguousarray(m.reshape(bsz, 1))) for m in masks]
    ys: list[Any] = [None] * seq
    if fused:  # every step's h·Rᵀ has the same shapes: checked once, not per step
        recurrent = spec.check_gemm(hs, rk, None, False, True)
        ops.be._begin_kernel("gemm", recurrent)
    for t in (range(seq - 1, -1, -1) if reverse else range(seq)):
        if fused:  # one launch for the gates, the cell update and the selects
            ys[t], hs, cs = ops.be._lstm_cell(xw, t * bsz, ops.be._gemm(recurrent, hs, rk, None),
                                              hs, cs, None if masks is None else masks[t])
            continue
        xt = ops.slice(xw, t * bsz, (t + 1) * bsz, 0)
        cn = None
        if p.cell == "rnn":
            hn = act(0, ops.add(xt, ops.gemm(hs, rk)))
        elif p.cell == "gru":
            hr = ops.gemm(hs, rk_zr if rk_zr is not None else rk)
            zr = act(0, ops.add(cols(xt, 0, 2), cols(hr, 0, 2)))
            z, rr = cols(zr, 0), cols(zr, 1)
            if p.linear_before_reset:
                lin = cols(hr, 2) if rbh is None else ops.add(cols(hr, 2), rbh)
                cand = ops.add(cols(xt, 2), ops.mul(rr, lin))
            else:
                cand = ops.add(cols(xt, 2), ops.gemm(ops.mul(rr, hs), rk_h))
            gt = act(1, cand)
            hn = ops.add(gt, ops.mul(z, ops.binary(hs, gt, "sub")))  # (1−z)·g + z·h
        else:
            pre = ops.add(xt, ops.gemm(hs, rk))
            i_pre, o_pre, f_pre, c_pre = (cols(pre, j) for j in range(4))
            if pi is not None:
                i_pre = ops.add(i_pre, ops.mul(pi, cs))
                f_pre = ops.add(f_pre, ops.mul(pf, cs))
            i = act(0, i_pre)
            f = ops.binary(ops.const(1.0), i, "sub") if p.input_forget else act(0, f_pre)
            cn = ops.add(ops.mul(f, cs), ops.mul(i, act(1, c_pre)))
            if po is not None:
                o_pre = ops.add(o_pre, ops.mul(po, cn))
            hn = ops.mul(act(0, o_pre), act(2, cn, None))  # clip: the gates only
        if masks is not None:  # selects, exact: a finished sequence keeps its state
            m = masks[t]
            ys[t] = ops.where(m, hn, ops.const(0.0))
            hs = ops.where(m, hn, hs)
            if cn is not None:
                cs = ops.where(m, cn, cs)
        else:
            ys[t], hs, cs = hn, hn, cn
    y = ops.concat([ops.reshape(v, (1, 1, bsz, h)) for v in ys], 0)
    return y, ops.reshape(hs, (1, bsz, h)), None if cs is None else ops.reshape(cs, (1, bsz, h))


def run_lowered(be: Any, p: RnnProblem, x, w, r, b=None, initial_h=None, initial_c=None,
                peep=None) -> tuple:
    """(Y, Y_h[, Y_c]) of ``p`` on ``be``'s kernels (see the module)."""
    ops = _Ops(be)
    if p.layout:
        x = ops.transpose(x, (1, 0, 2))
        initial_h = None if initial_h is None else ops.transpose(initial_h, (1, 0, 2))
        initial_c = None if initial_c is None else ops.transpose(initial_c, (1, 0, 2))
    xr = ops.reshape(x, (p.seq * p.batch, p.input_size))
    masks = None
    if p.lengths is not None:
        lengths = np.asarray(p.lengths)
        # (T, B): 1 where step t is within row b's sequence (uploaded by ``_direction``)
        masks = (np.arange(p.seq)[:, None] < lengths[None, :]).astype(np.uint8)
    parts = [_direction(ops, p, k, xr, w, r, b, initial_h, initial_c, peep, masks)
             for k in range(p.directions)]
    y = ops.concat([part[0] for part in parts], 1)
    yh = ops.concat([part[1] for part in parts], 0)
    yc = ops.concat([part[2] for part in parts], 0) if p.cell == "lstm" else None
    if p.layout:
        y = ops.transpose(y, (2, 0, 1, 3))
        yh = ops.transpose(yh, (1, 0, 2))
        yc = None if yc is None else ops.transpose(yc, (1, 0, 2))
    return (y, yh, yc) if p.cell == "lstm" else (y, yh)
