"""float64 reference for ONNX RNN, GRU and LSTM (``spec.check_rnn``'s problem): the
equations of the ONNX spec, one step at a time, every attribute honoured. ``clip`` bounds
the gates' pre-activations (not the cell state before LSTM's h, as onnxruntime does).

Every step's input projection is one product over the whole sequence, so the same code
in float32 (``dtype``) is the numpy backend's ``_rnn``: only the recurrent product and
the gates per step, where the generic lowering made ~25 checked kernel calls a step
(translator encoder, batch 8 x 32 steps, busy VM: 72 ms lowered)."""

from __future__ import annotations

import numpy as np

from hwbench.kernels.spec.rnn import RnnActivation, RnnProblem


def activation(a: RnnActivation, x: np.ndarray) -> np.ndarray:
    """One of ``spec.RNN_ACTIVATIONS`` with its alpha/beta, in float64."""
    n, al, be = a.name, a.alpha, a.beta
    if n == "relu":
        return np.maximum(x, 0.0)
    if n == "tanh":
        return np.tanh(x)
    if n == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if n == "affine":
        return al * x + be
    if n == "leakyrelu":
        return np.where(x < 0, al * x, x)
    if n == "thresholdedrelu":
        return np.where(x > al, x, 0.0)
    if n == "scaledtanh":
        return al * np.tanh(be * x)
    if n == "hardsigmoid":
        return np.clip(al * x + be, 0.0, 1.0)
    if n == "elu":
        return np.where(x < 0, al * (np.exp(x) - 1.0), x)
    if n == "softsign":
        return x / (1.0 + np.abs(x))
    if n == "softplus":
        return np.log1p(np.exp(x))
    raise ValueError(n)


def rnn(p: RnnProblem, x, w, r, b=None, initial_h=None, initial_c=None, peep=None,
        dtype: type = np.float64):
    """(Y, Y_h, Y_c) in ``dtype`` (Y_c None unless LSTM) for ``p`` and its inputs (NumPy)."""
    x, w, r = (np.asarray(v, dtype) for v in (x, w, r))
    d, g, h = p.directions, p.gates, p.hidden
    if p.layout:
        x = x.transpose(1, 0, 2)
    swap = (lambda s: s.transpose(1, 0, 2)) if p.layout else (lambda s: s)
    h0 = (swap(np.asarray(initial_h, dtype)) if initial_h is not None
          else np.zeros((d, p.batch, h), dtype))
    c0 = (swap(np.asarray(initial_c, dtype)) if initial_c is not None
          else np.zeros((d, p.batch, h), dtype))
    bias = np.asarray(b, dtype) if b is not None else np.zeros((d, 2 * g * h), dtype)
    pp = np.asarray(peep, dtype) if peep is not None else np.zeros((d, 3 * h), dtype)
    lengths = np.array(p.lengths if p.lengths is not None else [p.seq] * p.batch)
    y = np.zeros((p.seq, d, p.batch, h), dtype)
    yh, yc = np.zeros((d, p.batch, h), dtype), np.zeros((d, p.batch, h), dtype)
    clip = p.clip

    def act(k: int, index: int, v: np.ndarray) -> np.ndarray:
        if clip is not None:
            v = np.clip(v, -clip, clip)
        return activation(p.activation(k, index), v)

    for k in range(d):
        reverse = p.direction == "reverse" or k == 1
        wb, rb = bias[k, :g * h], bias[k, g * h:]
        hs, cs = h0[k].copy(), c0[k].copy()
        steps = range(p.seq - 1, -1, -1) if reverse else range(p.seq)
        xw_all = (x.reshape(-1, p.input_size) @ w[k].T + wb).reshape(p.seq, p.batch, g * h)
        for t in steps:
            live = (t < lengths)[:, None]
            xw = xw_all[t]
            hr = hs @ r[k].T
            if p.cell == "rnn":
                hn = act(k, 0, xw + hr + rb)
                cn = cs
            elif p.cell == "gru":
                z = act(k, 0, xw[:, :h] + hr[:, :h] + rb[:h])
                rr = act(k, 0, xw[:, h:2 * h] + hr[:, h:2 * h] + rb[h:2 * h])
                if p.linear_before_reset:
                    cand = xw[:, 2 * h:] + rr * (hr[:, 2 * h:] + rb[2 * h:])
                else:
                    cand = xw[:, 2 * h:] + (rr * hs) @ r[k, 2 * h:].T + rb[2 * h:]
                hn = (1.0 - z) * act(k, 1, cand) + z * hs
                cn = cs
            else:
                pre = xw + hr + rb
                pi, po, pf = pp[k, :h], pp[k, h:2 * h], pp[k, 2 * h:]
                i = act(k, 0, pre[:, :h] + pi * cs)
                f = 1.0 - i if p.input_forget else act(k, 0, pre[:, 2 * h:3 * h] + pf * cs)
                c = act(k, 1, pre[:, 3 * h:])
                cn = f * cs + i * c
                o = act(k, 0, pre[:, h:2 * h] + po * cn)
                hn = o * activation(p.activation(k, 2), cn)  # clip: gates only (as ORT)
            hs = np.where(live, hn, hs)
            cs = np.where(live, cn, cs)
            y[t, k] = np.where(live, hn, 0.0)
        yh[k], yc[k] = hs, cs
    if p.layout:
        y = y.transpose(2, 0, 1, 3)
        yh, yc = yh.transpose(1, 0, 2), yc.transpose(1, 0, 2)
    return y, yh, (yc if p.cell == "lstm" else None)
