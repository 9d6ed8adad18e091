"""The translator as standard ONNX: an encoder model and a one-step decoder model, run by
a host decoding loop (ONNX has no loop-free way to feed a step its own output).

encoder (opset 13): ``source`` int64 (batch, sequence) character ids and ``lengths``
int32 (batch,) -> ``states`` (batch, sequence, H), ``keys_t`` (batch, H, sequence) and
``h`` (batch, H): one-hot by Gather on an identity matrix, then ONNX ``LSTM`` (its gate
order i, o, f, c is the model's) with ``sequence_lens``, then W_a for the keys.

decoder step: ``previous`` int64 (batch,), ``h``, ``c`` (batch, H), ``states``, ``keys_t``
and ``mask`` (batch, sequence; 0 or ``MASKED`` past each sentence's end) -> ``logits``
(batch, target vocabulary), ``h_next``, ``c_next``: a one-step ``LSTM``, attention by
``MatMul`` + ``Softmax``, then ``Gemm``/``Tanh``/``Gemm``.

``decode`` runs the loop with any two callables that take feeds and return outputs
(``hwbench.Session.run``, onnxruntime's ``run``), so every backend and onnxruntime run
exactly the same graphs and steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.datasets import dates
from hwbench.models.translator.model import MASKED, Params, hidden_size

OPSET = 13
Runner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


def _lstm_weights(params: Params, prefix: str) -> tuple[np.ndarray, ...]:
    """ONNX LSTM's W (1, 4H, I), R (1, 4H, H), B (1, 8H) from (I, 4H)-shaped weights."""
    w = params[f"{prefix}_wx"].T[None].astype(np.float32)
    r = params[f"{prefix}_wh"].T[None].astype(np.float32)
    b = np.concatenate([params[f"{prefix}_b"], np.zeros_like(params[f"{prefix}_b"])])[None]
    return np.ascontiguousarray(w), np.ascontiguousarray(r), b.astype(np.float32)


def encoder_onnx(params: Params) -> Any:
    """The encoder as an ``onnx.ModelProto`` with symbolic ``batch`` and ``sequence``."""
    from onnx import TensorProto, helper, numpy_helper

    n, vocab = hidden_size(params), params["enc_wx"].shape[0]
    w, r, b = _lstm_weights(params, "enc")
    inits = [numpy_helper.from_array(np.eye(vocab, dtype=np.float32), "eye"),
             numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"),
             numpy_helper.from_array(b, "B"),
             numpy_helper.from_array(params["att_w"].astype(np.float32), "att_w"),
             numpy_helper.from_array(np.array([0], np.int64), "axis0"),
             numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    node = helper.make_node
    nodes = [
        node("Gather", ["eye", "source"], ["onehot"], axis=0),              # (B, T, V)
        node("Transpose", ["onehot"], ["x"], perm=[1, 0, 2]),               # (T, B, V)
        node("LSTM", ["x", "W", "R", "B", "lengths"], ["y", "y_h"], hidden_size=n),
        node("Squeeze", ["y", "axis1"], ["y_tbh"]),                         # (T, B, H)
        node("Transpose", ["y_tbh"], ["states"], perm=[1, 0, 2]),           # (B, T, H)
        node("MatMul", ["states", "att_w"], ["keys"]),
        node("Transpose", ["keys"], ["keys_t"], perm=[0, 2, 1]),            # (B, H, T)
        node("Squeeze", ["y_h", "axis0"], ["h"]),
    ]
    graph = helper.make_graph(
        nodes, "translator_encoder",
        [helper.make_tensor_value_info("source", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"])],
        [helper.make_tensor_value_info("states", TensorProto.FLOAT, ["batch", "sequence", n]),
         helper.make_tensor_value_info("keys_t", TensorProto.FLOAT, ["batch", n, "sequence"]),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, ["batch", n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             producer_name="hwbench")


def decoder_step_onnx(params: Params) -> Any:
    """One decoding step as an ``onnx.ModelProto`` (symbolic ``batch`` and ``sequence``)."""
    from onnx import TensorProto, helper, numpy_helper

    n, vocab = hidden_size(params), params["dec_wx"].shape[0]
    w, r, b = _lstm_weights(params, "dec")
    arrays = {"eye": np.eye(vocab, dtype=np.float32), "W": w, "R": r, "B": b,
              "comb_w": params["comb_w"], "comb_b": params["comb_b"],
              "out_w": params["out_w"], "out_b": params["out_b"],
              "axis0": np.array([0], np.int64), "axis1": np.array([1], np.int64)}
    inits = [numpy_helper.from_array(np.asarray(v, v.dtype if v.dtype == np.int64
                                                else np.float32), k)
             for k, v in arrays.items()]
    node = helper.make_node
    nodes = [
        node("Gather", ["eye", "previous"], ["onehot"], axis=0),            # (B, V)
        node("Unsqueeze", ["onehot", "axis0"], ["x"]),                      # (1, B, V)
        node("Unsqueeze", ["h", "axis0"], ["h0"]),
        node("Unsqueeze", ["c", "axis0"], ["c0"]),
        node("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["", "y_h", "y_c"],
             hidden_size=n),
        node("Squeeze", ["y_h", "axis0"], ["h_next"]),
        node("Squeeze", ["y_c", "axis0"], ["c_next"]),
        node("Unsqueeze", ["h_next", "axis1"], ["query"]),                  # (B, 1, H)
        node("MatMul", ["query", "keys_t"], ["scores"]),                    # (B, 1, T)
        node("Unsqueeze", ["mask", "axis1"], ["mask3"]),
        node("Add", ["scores", "mask3"], ["masked"]),
        node("Softmax", ["masked"], ["weights"], axis=-1),
        node("MatMul", ["weights", "states"], ["context3"]),                # (B, 1, H)
        node("Squeeze", ["context3", "axis1"], ["context"]),
        node("Concat", ["h_next", "context"], ["joined"], axis=1),          # (B, 2H)
        node("Gemm", ["joined", "comb_w", "comb_b"], ["mixed_pre"]),
        node("Tanh", ["mixed_pre"], ["mixed"]),
        node("Gemm", ["mixed", "out_w", "out_b"], ["logits"]),
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "translator_decoder_step",
        [value("previous", TensorProto.INT64, ["batch"]),
         value("h", TensorProto.FLOAT, ["batch", n]), value("c", TensorProto.FLOAT, ["batch", n]),
         value("states", TensorProto.FLOAT, ["batch", "sequence", n]),
         value("keys_t", TensorProto.FLOAT, ["batch", n, "sequence"]),
         value("mask", TensorProto.FLOAT, ["batch", "sequence"])],
        [value("logits", TensorProto.FLOAT, ["batch", vocab]),
         value("h_next", TensorProto.FLOAT, ["batch", n]),
         value("c_next", TensorProto.FLOAT, ["batch", n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             producer_name="hwbench")


def source_feeds(sources: list[str], sequence: int | None = None) -> dict[str, np.ndarray]:
    """The encoder's feeds for ``sources``, padded to ``sequence`` characters (default:
    the longest), so one encoder of a fixed shape serves sentences of any length."""
    ids, lengths = dates.encode_sources(sources)
    if sequence is not None and sequence > ids.shape[1]:
        ids = np.pad(ids, ((0, 0), (0, sequence - ids.shape[1])), constant_values=dates.PAD)
    return {"source": ids, "lengths": lengths.astype(np.int32)}


def decode(encoder: Runner, step: Runner, feeds: dict[str, np.ndarray],
           steps: int = dates.TARGET_LENGTH) -> np.ndarray:
    """Greedy decoding with two runners: ``encoder(feeds)`` -> [states, keys_t, h], then
    ``steps`` calls of ``step`` -> [logits, h, c], each fed its own best guess. Returns
    target ids (batch, ``steps``)."""
    states, keys_t, h = encoder(feeds)
    batch, sequence = feeds["source"].shape
    mask = np.where(np.arange(sequence)[None, :] < feeds["lengths"][:, None], 0.0,
                    MASKED).astype(np.float32)
    c = np.zeros_like(h)
    previous = np.full(batch, dates.EOS, np.int64)
    out = np.empty((batch, steps), np.int64)
    for t in range(steps):
        logits, h, c = step({"previous": previous, "h": h, "c": c, "states": states,
                             "keys_t": keys_t, "mask": mask})
        previous = np.asarray(logits).argmax(axis=1).astype(np.int64)
        out[:, t] = previous
    return out
