"""BERT-base, GPT-2 small and ViT-B/16 as ``torch.onnx.export`` (opset 17) writes them.

The graphs follow the HuggingFace ``BertModel`` / ``GPT2LMHeadModel`` and torchvision
``vit_b_16`` definitions op for op, so hwbench meets the ops a real export holds: Gather
embeddings, LayerNormalization, Linear as MatMul + Add, heads by Reshape/Transpose, 4-D
MatMul attention, the additive mask from ``attention_mask`` (BERT), the sliced ``bias``
buffer + Where causal mask and Range positions (GPT-2), GELU in its erf (BERT, ViT) and
tanh (GPT-2) forms. The three share the attention and MLP blocks below.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hwbench.models.generated.builder import Builder, dim

F32_MIN = float(np.finfo(np.float32).min)  # HF's mask value: torch.finfo(dtype).min


def gelu_erf(b: Builder, x: str) -> str:
    """``x * 0.5 * (1 + erf(x / √2))``: nn.GELU() as opset 17 exports it."""
    e = b.op("Erf", [b.op("Div", [x, b.scalar(math.sqrt(2.0))])])
    return b.op("Mul", [b.op("Mul", [x, b.op("Add", [e, b.scalar(1.0)])]), b.scalar(0.5)])


def gelu_tanh(b: Builder, x: str) -> str:
    """GPT-2's ``gelu_new``: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
    cube = b.op("Mul", [b.op("Pow", [x, b.scalar(3.0)]), b.scalar(0.044715)])
    inner = b.op("Mul", [b.op("Add", [x, cube]), b.scalar(math.sqrt(2.0 / math.pi))])
    t = b.op("Add", [b.op("Tanh", [inner]), b.scalar(1.0)])
    return b.op("Mul", [b.op("Mul", [b.scalar(0.5), x]), t])


def _heads(b: Builder, x: str, heads: int, width: int, perm: list[int]) -> str:
    """[B, S, H] -> [B, heads, S, d] (or [B, heads, d, S] for keys, one fused Transpose)."""
    shape = b.const("heads_shape", [0, 0, heads, width // heads], np.int64)
    return b.op("Transpose", [b.op("Reshape", [x, shape])], perm=perm)


def attention(b: Builder, x: str, prefix: str, width: int, heads: int, *, fused: bool,
              scale: str, mask: str | None = None, causal: str | None = None) -> str:
    """Multi-head self-attention. ``fused``: one QKV Linear then Split (GPT-2's c_attn,
    torchvision's in_proj); else three Linears (BERT). ``scale``: "div" (scores / √d) or
    "mul" (scores · 1/√d). ``mask``: an additive [B,1,1,S] mask; ``causal``: a boolean
    [1,1,S,S] mask for Where(mask, scores, min)."""
    if fused:
        qkv = b.linear(x, f"{prefix}.qkv", width, 3 * width)
        split = b.const("split", [width] * 3, np.int64)
        q, k, v = b.op("Split", [qkv, split], outputs=3, axis=2)
    else:
        q, k, v = (b.linear(x, f"{prefix}.{n}", width, width) for n in ("query", "key", "value"))
    q = _heads(b, q, heads, width, [0, 2, 1, 3])
    k = _heads(b, k, heads, width, [0, 2, 3, 1])
    v = _heads(b, v, heads, width, [0, 2, 1, 3])
    scores = b.op("MatMul", [q, k])
    d = width // heads
    if scale == "div":
        scores = b.op("Div", [scores, b.scalar(math.sqrt(d))])
    else:
        scores = b.op("Mul", [scores, b.scalar(1.0 / math.sqrt(d))])
    if causal is not None:
        scores = b.op("Where", [causal, scores, b.scalar(F32_MIN)])
    if mask is not None:
        scores = b.op("Add", [scores, mask])
    context = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
    context = b.op("Transpose", [context], perm=[0, 2, 1, 3])
    merged = b.op("Reshape", [context, b.const("merge_shape", [0, 0, width], np.int64)])
    return b.linear(merged, f"{prefix}.out", width, width)


def mlp(b: Builder, x: str, prefix: str, width: int, ffn: int, gelu: str = "erf") -> str:
    h = b.linear(x, f"{prefix}.fc1", width, ffn)
    h = gelu_erf(b, h) if gelu == "erf" else gelu_tanh(b, h)
    return b.linear(h, f"{prefix}.fc2", ffn, width)


def _seq_len(b: Builder, ids: str) -> str:
    """The sequence length of [B, S] ids as a 1-D int64 tensor (Shape -> Slice)."""
    one = b.const("one", [1], np.int64)
    return b.op("Slice", [b.op("Shape", [ids]), one, b.const("two", [2], np.int64),
                          b.const("zero", [0], np.int64)])


def bert(batch: int | None = None, seed: int = 0, *, sequence: int | None = None,
         layers: int = 12, hidden: int = 768, heads: int = 12, ffn: int = 3072,
         vocab: int = 30522, max_positions: int = 512, type_vocab: int = 2,
         pooler: bool = True) -> Any:
    """BERT-base (HF ``BertModel``): post-LN encoder, inputs input_ids, attention_mask,
    token_type_ids; outputs last_hidden_state (and pooler_output)."""
    b = Builder("bert", seed)
    ids_shape = [dim(batch), dim(sequence, "sequence")]
    words = b.op("Gather", [b.normal("embeddings.word_embeddings.weight", (vocab, hidden),
                                     0.02), "input_ids"])
    types = b.op("Gather", [b.normal("embeddings.token_type_embeddings.weight",
                                     (type_vocab, hidden), 0.02), "token_type_ids"])
    position_ids = b.op("Slice", [
        b.const("embeddings.position_ids", np.arange(max_positions)[None], np.int64),
        b.const("zero", [0], np.int64), _seq_len(b, "input_ids"),
        b.const("one", [1], np.int64)])
    positions = b.op("Gather", [b.normal("embeddings.position_embeddings.weight",
                                         (max_positions, hidden), 0.02), position_ids])
    x = b.op("Add", [b.op("Add", [words, types]), positions])
    x = b.layer_norm(x, "embeddings.LayerNorm", hidden, eps=1e-12)
    # extended mask: (1 - mask[:, None, None, :]) * finfo.min
    mask = b.op("Unsqueeze", ["attention_mask", b.const("axes", [1, 2], np.int64)])
    mask = b.op("Sub", [b.scalar(1.0), b.op("Cast", [mask], to=1)])
    mask = b.op("Mul", [mask, b.scalar(F32_MIN)])
    for i in range(layers):
        p = f"encoder.layer.{i}"
        a = attention(b, x, f"{p}.attention", hidden, heads, fused=False, scale="div",
                      mask=mask)
        x = b.layer_norm(b.op("Add", [a, x]), f"{p}.attention.LayerNorm", hidden, eps=1e-12)
        m = mlp(b, x, p, hidden, ffn, "erf")
        x = b.layer_norm(b.op("Add", [m, x]), f"{p}.output.LayerNorm", hidden, eps=1e-12)
    b.nodes.append(_renamed(x, b, "last_hidden_state"))
    x = "last_hidden_state"
    outputs = [("last_hidden_state", np.float32, [*ids_shape, hidden])]
    if pooler:
        first = b.op("Gather", [x, b.const("first", 0, np.int64)], axis=1)
        pooled = b.gemm(first, "pooler.dense", hidden, hidden, 0.02)
        b.nodes.append(_renamed(b.op("Tanh", [pooled]), b, "pooler_output"))
        outputs.append(("pooler_output", np.float32, [ids_shape[0], hidden]))
    inputs = [(n, np.int64, ids_shape) for n in ("input_ids", "attention_mask",
                                                  "token_type_ids")]
    return b.model(inputs, outputs)


def _renamed(output: str, b: Builder, name: str) -> Any:
    """Pop the node that wrote ``output`` and give it the graph output's name."""
    node = b.nodes.pop()
    assert node.output[0] == output
    node.output[0] = name
    return node


def gpt2(batch: int | None = None, seed: int = 0, *, sequence: int | None = None,
         layers: int = 12, hidden: int = 768, heads: int = 12, vocab: int = 50257,
         n_positions: int = 1024) -> Any:
    """GPT-2 small (HF ``GPT2LMHeadModel``): pre-LN decoder with a causal mask and an LM
    head tied to the token embedding; input input_ids, output logits [B, S, vocab]."""
    b = Builder("gpt2", seed)
    ids_shape = [dim(batch), dim(sequence, "sequence")]
    wte = b.normal("transformer.wte.weight", (vocab, hidden), 0.02)
    length = b.op("Gather", [b.op("Shape", ["input_ids"]), b.const("one", 1, np.int64)])
    position_ids = b.op("Unsqueeze", [
        b.op("Range", [b.const("zero", 0, np.int64), length, b.const("one", 1, np.int64)]),
        b.const("axes", [0], np.int64)])
    wpe = b.normal("transformer.wpe.weight", (n_positions, hidden), 0.01)
    x = b.op("Add", [b.op("Gather", [wte, "input_ids"]), b.op("Gather", [wpe, position_ids])])
    # causal mask: the lower-triangular ``bias`` buffer sliced to the sequence
    tril = np.tril(np.ones((n_positions, n_positions), dtype=bool))[None, None]
    s = _seq_len(b, "input_ids")
    causal = b.op("Slice", [b.const("attn.bias", tril, np.bool_),
                            b.const("starts", [0, 0], np.int64), b.op("Concat", [s, s], axis=0),
                            b.const("axes", [2, 3], np.int64)])
    for i in range(layers):
        p = f"transformer.h.{i}"
        a = attention(b, b.layer_norm(x, f"{p}.ln_1", hidden), f"{p}.attn", hidden, heads,
                      fused=True, scale="div", causal=causal)
        x = b.op("Add", [a, x])
        x = b.op("Add", [mlp(b, b.layer_norm(x, f"{p}.ln_2", hidden), f"{p}.mlp", hidden,
                             4 * hidden, "tanh"), x])
    x = b.layer_norm(x, "transformer.ln_f", hidden)
    head = b.op("Transpose", [wte], perm=[1, 0])
    b.nodes.append(_renamed(b.op("MatMul", [x, head]), b, "logits"))
    return b.model([("input_ids", np.int64, ids_shape)],
                   [("logits", np.float32, [*ids_shape, vocab])])


def vit(batch: int | None = None, seed: int = 0, *, image: int = 224, patch: int = 16,
        layers: int = 12, hidden: int = 768, heads: int = 12, ffn: int = 3072,
        classes: int = 1000) -> Any:
    """ViT-B/16 (torchvision ``vit_b_16``): Conv patchify, class token, learned positions,
    pre-LN encoder, head on the class token; input [B, 3, 224, 224], output [B, 1000]."""
    b = Builder("vit_b16", seed)
    w = b.he("conv_proj.weight", (hidden, 3, patch, patch), 3 * patch * patch, gain=1.0)
    x = b.op("Conv", ["input", w, b.const("conv_proj.bias", np.zeros(hidden, np.float32))],
             kernel_shape=[patch, patch], strides=[patch, patch])
    x = b.op("Reshape", [x, b.const("flat_shape", [0, hidden, -1], np.int64)])
    x = b.op("Transpose", [x], perm=[0, 2, 1])
    # class_token.expand(n, -1, -1): Expand to Concat(Shape(x)[:1], [1, hidden])
    n = b.op("Slice", [b.op("Shape", ["input"]), b.const("zero", [0], np.int64),
                       b.const("one", [1], np.int64), b.const("zero", [0], np.int64)])
    shape = b.op("Concat", [n, b.const("cls_shape", [1, hidden], np.int64)], axis=0)
    cls = b.op("Expand", [b.normal("class_token", (1, 1, hidden), 0.02), shape])
    x = b.op("Concat", [cls, x], axis=1)
    tokens = (image // patch) ** 2 + 1
    x = b.op("Add", [x, b.normal("encoder.pos_embedding", (1, tokens, hidden), 0.02)])
    for i in range(layers):
        p = f"encoder.layers.encoder_layer_{i}"
        a = attention(b, b.layer_norm(x, f"{p}.ln_1", hidden, 1e-6), f"{p}.self_attention",
                      hidden, heads, fused=True, scale="mul")
        x = b.op("Add", [a, x])
        x = b.op("Add", [mlp(b, b.layer_norm(x, f"{p}.ln_2", hidden, 1e-6), f"{p}.mlp",
                             hidden, ffn, "erf"), x])
    x = b.layer_norm(x, "encoder.ln", hidden, 1e-6)
    first = b.op("Gather", [x, b.const("first", 0, np.int64)], axis=1)
    b.nodes.append(_renamed(b.gemm(first, "heads.head", hidden, classes, 0.02), b, "logits"))
    return b.model([("input", np.float32, [dim(batch), 3, image, image])],
                   [("logits", np.float32, [dim(batch), classes])])
