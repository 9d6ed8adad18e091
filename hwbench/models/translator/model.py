"""The translator's network: an LSTM encoder, an LSTM decoder and Luong attention.

Encoder: source characters (one-hot, so the embedding is the input weights' rows) through
an LSTM, giving one state per character. Decoder: the previous output character through
its own LSTM, starting from the encoder's state at the sentence's last character; its
state at each step queries the encoder states ("general" attention: score = qᵀ·W_a·k,
softmax over the sentence, padding masked); the state and the attended context go
through tanh(W_c·[h; c] + b_c) and a linear layer to the next character's logits.

The LSTM gates are the talk's sigmoid (input, output, forget) and tanh (candidate, cell
output), in ONNX's order i, o, f, c, forward and backward through ``ops`` (the kernel
interface, or float64 for checks). With teacher forcing the decoder's inputs are known,
so training runs its LSTM over all steps first and then attends for all steps at once
(one batched matmul per product); greedy decoding attends step by step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwbench.datasets.dates import EOS
from hwbench.models.translator.ops import Ops

Params = dict[str, np.ndarray]
PARAM_NAMES = ("enc_wx", "enc_wh", "enc_b", "dec_wx", "dec_wh", "dec_b", "att_w",
               "comb_w", "comb_b", "out_w", "out_b")
MASKED = -1e9  # score of a padding position: exp() of it is 0 in float32 and float64


def init_params(source_vocab: int, target_vocab: int, hidden: int, seed: int) -> Params:
    """Uniform ±1/√hidden (as PyTorch's LSTM), forget-gate bias 1: float32 arrays."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden)
    shapes = {"enc_wx": (source_vocab, 4 * hidden), "enc_wh": (hidden, 4 * hidden),
              "enc_b": (4 * hidden,), "dec_wx": (target_vocab, 4 * hidden),
              "dec_wh": (hidden, 4 * hidden), "dec_b": (4 * hidden,),
              "att_w": (hidden, hidden), "comb_w": (2 * hidden, hidden), "comb_b": (hidden,),
              "out_w": (hidden, target_vocab), "out_b": (target_vocab,)}
    params = {name: rng.uniform(-bound, bound, shapes[name]).astype(np.float32)
              for name in PARAM_NAMES}
    for bias in ("enc_b", "dec_b"):
        params[bias][2 * hidden:3 * hidden] = 1.0  # i, o, f, c: remember by default
    return params


def hidden_size(params: Params) -> int:
    return int(params["enc_wh"].shape[0])


def one_hot(ids: np.ndarray, size: int, dtype: type) -> np.ndarray:
    """(..., ) int ids -> (prod(...), size) rows of the identity."""
    flat = ids.reshape(-1)
    out = np.zeros((len(flat), size), dtype)
    out[np.arange(len(flat)), flat] = 1
    return out


# -- LSTM over a sequence --------------------------------------------------------------------

@dataclass
class LstmTrace:
    """Per step (T, B, ·): the sigmoid gates (i, o, f), the candidate, the cells before
    and after, tanh of the cell, and the states that entered each step."""

    gates: np.ndarray
    cand: np.ndarray
    c_prev: np.ndarray
    tanh_c: np.ndarray
    h_prev: np.ndarray


def lstm_step(ops: Ops, zx: np.ndarray, h: np.ndarray, c: np.ndarray,
              wh: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """One step: ``zx`` the input's gate pre-activations (B, 4H) with the bias in it."""
    n = h.shape[1]
    z = ops.gemm(h, wh, zx)
    s = ops.sigmoid(z[:, :3 * n])
    g = ops.tanh(z[:, 3 * n:])
    c_new = s[:, 2 * n:] * c + s[:, :n] * g
    tc = ops.tanh(c_new)
    return s[:, n:2 * n] * tc, c_new, (s, g, tc)


def lstm_forward(ops: Ops, zx: np.ndarray, wh: np.ndarray, h0: np.ndarray,
                 c0: np.ndarray) -> tuple[np.ndarray, LstmTrace]:
    """States (T, B, H) for input pre-activations ``zx`` (T, B, 4H)."""
    steps, batch, n = len(zx), h0.shape[0], h0.shape[1]
    dt = ops.dtype
    trace = LstmTrace(np.empty((steps, batch, 3 * n), dt), np.empty((steps, batch, n), dt),
                      np.empty((steps, batch, n), dt), np.empty((steps, batch, n), dt),
                      np.empty((steps, batch, n), dt))
    hs = np.empty((steps, batch, n), dt)
    h, c = h0, c0
    for t in range(steps):
        trace.h_prev[t], trace.c_prev[t] = h, c
        h, c, (s, g, tc) = lstm_step(ops, zx[t], h, c, wh)
        trace.gates[t], trace.cand[t], trace.tanh_c[t] = s, g, tc
        hs[t] = h
    return hs, trace


def lstm_backward(ops: Ops, trace: LstmTrace, wh: np.ndarray,
                  dhs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dzx, dwh, dh0)`` from the loss's gradient ``dhs`` (T, B, H) on the states."""
    steps, batch, n = dhs.shape
    dz = np.empty((steps, batch, 4 * n), ops.dtype)
    dh_next = np.zeros((batch, n), ops.dtype)
    dc_next = np.zeros((batch, n), ops.dtype)
    for t in reversed(range(steps)):
        s, g, tc = trace.gates[t], trace.cand[t], trace.tanh_c[t]
        i, o, f = s[:, :n], s[:, n:2 * n], s[:, 2 * n:]
        dh = dhs[t] + dh_next
        dc = dc_next + ops.tanh_backward(tc, dh * o)
        ds = np.concatenate([dc * g, dh * tc, dc * trace.c_prev[t]], axis=1)
        dz[t, :, :3 * n] = ops.sigmoid_backward(s, ds)
        dz[t, :, 3 * n:] = ops.tanh_backward(g, dc * i)
        dc_next = dc * f
        dh_next = ops.gemm(dz[t], wh, trans_b=True)
    dwh = ops.gemm(trace.h_prev.reshape(-1, n), dz.reshape(-1, 4 * n), trans_a=True)
    return dz, dwh, dh_next


# -- attention and output --------------------------------------------------------------------

@dataclass
class Memory:
    """The encoder's side of attention: states (B, T, H), keys W_a·states transposed
    (B, H, T), the padding mask (B, 1, T) added to scores."""

    states: np.ndarray
    keys_t: np.ndarray
    mask: np.ndarray


def make_memory(ops: Ops, params: Params, enc_states: np.ndarray,
                lengths: np.ndarray) -> Memory:
    steps, batch, n = enc_states.shape
    states = np.ascontiguousarray(enc_states.transpose(1, 0, 2))
    keys = ops.gemm(states.reshape(-1, n), params["att_w"]).reshape(batch, steps, n)
    mask = np.where(np.arange(steps)[None, None, :] < lengths[:, None, None], 0.0, MASKED)
    return Memory(states, np.ascontiguousarray(keys.transpose(0, 2, 1)), mask.astype(ops.dtype))


def attend(ops: Ops, params: Params, queries: np.ndarray,
           memory: Memory) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Logits (B·L, V) for decoder states ``queries`` (B, L, H), and what backward needs."""
    batch, steps, n = queries.shape
    weights = ops.softmax(ops.matmul(queries, memory.keys_t) + memory.mask)   # (B, L, T)
    context = ops.matmul(weights, memory.states)                              # (B, L, H)
    joined = np.concatenate([queries, context], axis=2).reshape(batch * steps, 2 * n)
    mixed = ops.tanh(ops.gemm(joined, params["comb_w"], params["comb_b"]))
    logits = ops.gemm(mixed, params["out_w"], params["out_b"])
    return logits, (weights, joined, mixed)


def attend_backward(ops: Ops, params: Params, queries: np.ndarray, memory: Memory,
                    cache: tuple[np.ndarray, ...], dlogits: np.ndarray,
                    grads: Params) -> tuple[np.ndarray, np.ndarray]:
    """``(dqueries (B, L, H), dstates (B, T, H))``; weight gradients go into ``grads``."""
    weights, joined, mixed = cache
    batch, steps, n = queries.shape
    grads["out_w"] = ops.gemm(mixed, dlogits, trans_a=True)
    grads["out_b"] = dlogits.sum(axis=0)
    dpre = ops.tanh_backward(mixed, ops.gemm(dlogits, params["out_w"], trans_b=True))
    grads["comb_w"] = ops.gemm(joined, dpre, trans_a=True)
    grads["comb_b"] = dpre.sum(axis=0)
    djoined = ops.gemm(dpre, params["comb_w"], trans_b=True).reshape(batch, steps, 2 * n)
    dqueries, dcontext = djoined[:, :, :n], np.ascontiguousarray(djoined[:, :, n:])
    dweights = ops.matmul(dcontext, memory.states.transpose(0, 2, 1))
    dstates = ops.matmul(weights.transpose(0, 2, 1), dcontext)
    dscores = weights * (dweights - (weights * dweights).sum(axis=2, keepdims=True))
    dqueries = dqueries + ops.matmul(dscores, memory.keys_t.transpose(0, 2, 1))
    dkeys = ops.matmul(dscores.transpose(0, 2, 1), queries)                  # (B, T, H)
    grads["att_w"] = ops.gemm(memory.states.reshape(-1, n), dkeys.reshape(-1, n), trans_a=True)
    dstates = dstates + ops.gemm(dkeys.reshape(-1, n), params["att_w"],
                                 trans_b=True).reshape(dstates.shape)
    return dqueries, dstates


# -- the whole model ---------------------------------------------------------------------------

def _cast(params: Params, dtype: type) -> Params:
    return {k: v.astype(dtype, copy=False) for k, v in params.items()}


def encode(ops: Ops, params: Params, source: np.ndarray,
           lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, LstmTrace, np.ndarray]:
    """Encoder states (T, B, H), their last valid ones (B, H), the trace, the one-hot
    input (T·B, V)."""
    batch, steps = source.shape
    n = hidden_size(params)
    x = one_hot(source.T, params["enc_wx"].shape[0], ops.dtype)
    zx = ops.gemm(x, params["enc_wx"], params["enc_b"]).reshape(steps, batch, 4 * n)
    zeros = np.zeros((batch, n), ops.dtype)
    states, trace = lstm_forward(ops, zx, params["enc_wh"], zeros, zeros)
    return states, states[lengths - 1, np.arange(batch)], trace, x


def loss_and_gradients(ops: Ops, params: Params, source: np.ndarray, lengths: np.ndarray,
                       target: np.ndarray) -> tuple[float, Params]:
    """Mean cross-entropy per target character under teacher forcing, and its gradient
    for every parameter (in ``ops``' dtype)."""
    params = _cast(params, ops.dtype)
    batch, steps_out = target.shape
    n = hidden_size(params)
    enc_states, last, enc_trace, x_enc = encode(ops, params, source, lengths)
    prev = np.concatenate([np.full((batch, 1), EOS), target[:, :-1]], axis=1)
    x_dec = one_hot(prev.T, params["dec_wx"].shape[0], ops.dtype)
    zy = ops.gemm(x_dec, params["dec_wx"], params["dec_b"]).reshape(steps_out, batch, 4 * n)
    dec_states, dec_trace = lstm_forward(ops, zy, params["dec_wh"], last,
                                         np.zeros_like(last))
    memory = make_memory(ops, params, enc_states, lengths)
    queries = np.ascontiguousarray(dec_states.transpose(1, 0, 2))
    logits, cache = attend(ops, params, queries, memory)

    flat = target.reshape(-1)
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(flat))
    loss = float(-np.log(np.maximum(p[rows, flat], 1e-300)).mean())
    p[rows, flat] -= 1.0
    dlogits = (p / len(flat)).astype(ops.dtype)

    grads: Params = {}
    dqueries, dstates = attend_backward(ops, params, queries, memory, cache, dlogits, grads)
    dzy, grads["dec_wh"], dlast = lstm_backward(
        ops, dec_trace, params["dec_wh"], np.ascontiguousarray(dqueries.transpose(1, 0, 2)))
    dzy = dzy.reshape(-1, 4 * n)
    grads["dec_wx"] = ops.gemm(x_dec, dzy, trans_a=True)
    grads["dec_b"] = dzy.sum(axis=0)
    denc = np.ascontiguousarray(dstates.transpose(1, 0, 2))
    denc[lengths - 1, np.arange(batch)] += dlast
    dzx, grads["enc_wh"], _ = lstm_backward(ops, enc_trace, params["enc_wh"], denc)
    dzx = dzx.reshape(-1, 4 * n)
    grads["enc_wx"] = ops.gemm(x_enc, dzx, trans_a=True)
    grads["enc_b"] = dzx.sum(axis=0)
    return loss, grads


def translate_ids(ops: Ops, params: Params, source: np.ndarray, lengths: np.ndarray,
                  steps: int) -> np.ndarray:
    """Greedy decoding: (B, ``steps``) target ids, each step fed its own best guess."""
    params = _cast(params, ops.dtype)
    batch = len(source)
    enc_states, h, _, _ = encode(ops, params, source, lengths)
    memory = make_memory(ops, params, enc_states, lengths)
    c = np.zeros_like(h)
    prev = np.full(batch, EOS)
    out = np.empty((batch, steps), np.int64)
    vocab = params["dec_wx"].shape[0]
    for t in range(steps):
        zx = ops.gemm(one_hot(prev, vocab, ops.dtype), params["dec_wx"], params["dec_b"])
        h, c, _ = lstm_step(ops, zx, h, c, params["dec_wh"])
        logits, _ = attend(ops, params, h[:, None, :], memory)
        prev = logits.argmax(axis=1)
        out[:, t] = prev
    return out

