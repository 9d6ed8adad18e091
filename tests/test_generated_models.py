"""The generated zoo (issue 15): valid opset-17 graphs that onnxruntime runs, with the
published FLOP counts, seeded weights, and hwbench's own verdict on each (it runs and agrees
with onnxruntime, or refuses before running, naming ops it really lacks).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import hwbench
from hwbench.errors import UnsupportedError
from hwbench.graph.executor import lacks_kernel
from hwbench.graph.ops import OP_DEFS
from hwbench.models.generated import GENERATED

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TRANSFORMERS = ("bert_base", "gpt2", "vit_b16")
SMALL = {"layers": 2}  # the transformers at 2 layers: same ops, a fraction of the time

# Published MACs of one inference at batch 1 (sequence 128 for BERT and GPT-2).
PUBLISHED_MACS = {
    # Devlin et al. 2019 BERT-base encoder: 12·128·(4·768² + 2·768·3072) + attention
    "bert_base": 11.2e9,
    # Kaplan et al. 2020: 2N + 2·n_layer·n_ctx·d FLOPs per token, N = 85 M non-embedding
    # parameters -> ~11.0 GMACs at 128 tokens, *without* the tied LM head (+4.9 GMACs)
    "gpt2": 11.0e9,
    # torchvision vit_b_16: 17.56 "GFLOPS" (multiply-adds)
    "vit_b16": 17.56e9,
    # Sandler et al. 2018, Table 4: 300 M multiply-adds
    "mobilenet_v2": 300e6,
    # Howard et al. 2019, Table 3: 219 M MAdds (torchvision: 0.22 GFLOPS)
    "mobilenet_v3_large": 217e6,
    # Tan & Le 2019, Table 2: 0.39 B FLOPS (multiply-adds)
    "efficientnet_b0": 390e6,
    # Liu et al. 2022, Table 1: 4.5 G FLOPs (multiply-adds; torchvision 4.46)
    "convnext_tiny": 4.5e9,
}


def _build(name: str, seed: int = 0, **config):
    if name in TRANSFORMERS:
        config = {**SMALL, **config}
    if name in ("bert_base", "gpt2"):
        config.setdefault("sequence", 16)
    return GENERATED[name](1, seed, **config)


def _feeds(model) -> dict[str, np.ndarray]:
    """Seeded inputs: images N(0, 1); token ids inside the table the Gather reads them
    from; attention masks of ones."""
    rng = np.random.default_rng(1)
    tables = {t.name: t.dims[0] for t in model.graph.initializer if t.dims}
    rows = {n.input[1]: tables[n.input[0]] for n in model.graph.node
            if n.op_type == "Gather" and n.input[0] in tables}
    feeds = {}
    for value in model.graph.input:
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        if value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            feeds[value.name] = rng.standard_normal(shape, dtype=np.float32)
        elif "mask" in value.name:
            feeds[value.name] = np.ones(shape, np.int64)
        else:
            feeds[value.name] = rng.integers(0, rows[value.name], shape, dtype=np.int64)
    return feeds


def _ort_run(model, feeds) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@pytest.mark.parametrize("name", list(GENERATED))
def test_valid_and_runs_in_onnxruntime(name):
    model = _build(name)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    outputs = _ort_run(model, _feeds(model))
    expected = {"bert_base": [(1, 16, 768), (1, 768)], "gpt2": [(1, 16, 50257)]}
    assert [o.shape for o in outputs] == expected.get(name, [(1, 1000)])
    for out in outputs:  # activations stay O(1): the weights are scaled for it
        assert np.isfinite(out).all() and 0.01 < out.std() < 10


@pytest.mark.parametrize("name", TRANSFORMERS[:2])
def test_symbolic_dims(name):
    model = GENERATED[name](layers=1)
    dims = [[d.dim_param for d in v.type.tensor_type.shape.dim] for v in model.graph.input]
    assert all(d == ["batch", "sequence"] for d in dims)


def _macs(model, exclude: set[str] = frozenset()) -> int:
    """Multiply-adds of Conv, MatMul and Gemm, from the shapes onnxruntime computes (the
    products' inputs and outputs made graph outputs; hwbench's counter is not used, so
    this also checks models hwbench cannot load yet)."""
    g = model.graph
    products = [n for n in g.node if n.op_type in ("Conv", "MatMul", "Gemm")
                and n.name not in exclude]
    known = {v.name for v in g.output} | {t.name for t in g.initializer}
    wanted = {name for n in products for name in (*n.input[:2], n.output[0])} - known
    g.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in sorted(wanted))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    results = sess.run(names, _feeds(model))
    shapes = {name: out.shape for name, out in zip(names, results, strict=True)}
    shapes.update({t.name: tuple(t.dims) for t in g.initializer})
    total = 0
    for node in products:
        out, w = shapes[node.output[0]], shapes[node.input[1]]
        if node.op_type == "Conv":
            k = math.prod(w[1:])  # (C_in / group) · kh · kw
        else:  # MatMul, Gemm (transA is 0 in every generated model)
            k = shapes[node.input[0]][-1]
        total += math.prod(out) * k
    return total


@pytest.mark.parametrize("name", list(GENERATED))
def test_flops_match_published(name):
    config = {"sequence": 128} if name in ("bert_base", "gpt2") else {}
    model = GENERATED[name](1, 0, **config)  # the full-size architecture
    head = {n.name for n in model.graph.node if "logits" in n.output} if name == "gpt2" else set()
    macs = _macs(model, exclude=head)
    assert macs == pytest.approx(PUBLISHED_MACS[name], rel=0.10), f"{macs / 1e9:.3f} GMACs"


def test_same_seed_same_weights_other_seed_other():
    a, b, c = (GENERATED["mobilenet_v3_large"](1, seed) for seed in (3, 3, 4))
    weights = [{t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
               for m in (a, b, c)]
    assert weights[0].keys() == weights[2].keys()
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])
    conv = next(k for k in weights[0] if k.endswith("0.0.weight"))
    assert not np.array_equal(weights[0][conv], weights[2][conv])


def _refused_ops(message: str) -> set[str]:
    """The op types an UnsupportedError names (the loader's list or the executor's)."""
    ops = set(re.findall(r"(\w+) \(×\d+\)", message))
    for group in re.findall(r"\(for ([\w/]+)\)", message):
        ops.update(group.split("/"))
    return ops


def _verdict(model_or_name, onnx_model, tmp_path, **load):
    """hwbench's own verdict: runs on numpy and agrees with onnxruntime, or refuses
    before running, naming only ops it really lacks."""
    if not isinstance(model_or_name, str):
        path = tmp_path / "model.onnx"
        onnx.save(model_or_name, str(path))
        model_or_name = str(path)
    try:
        model = hwbench.load_model(model_or_name, **load)
        session = hwbench.Session(model, backend="numpy")
    except UnsupportedError as exc:
        named = _refused_ops(str(exc))
        assert named, str(exc)
        present = {n.op_type for n in onnx_model.graph.node}
        for op in named:
            assert op in present, op
            assert (op not in OP_DEFS.supported() or op not in OP_DEFS.executable()
                    or any(lacks_kernel(session_backend_class(), m) for m in OP_DEFS[op].kernels))
        return
    feeds = _feeds(onnx_model)
    ours = session.run({k: feeds[k] for k in model.inputs})
    theirs = _ort_run(onnx_model, feeds)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()
        assert np.array_equal(a.argmax(-1), b.argmax(-1))  # per sample / position


def session_backend_class():
    from hwbench.backends import get_backend

    return type(get_backend("numpy"))


@pytest.mark.parametrize("name", [n for n in GENERATED if n not in ("bert_base", "gpt2")])
def test_hwbench_verdict_by_name(name, tmp_path):
    """load_model(name) as the CLI does (ViT at full size: it builds in seconds)."""
    _verdict(name, GENERATED[name](1, 0), tmp_path)


@pytest.mark.parametrize("name", ["bert_base", "gpt2"])
def test_hwbench_verdict_text_models(name, tmp_path):
    """The decoder/encoder at 2 layers and sequence 16, through a file with symbolic
    batch and sequence sized by load_model's ``dims``."""
    model = GENERATED[name](None, 0, **SMALL)
    fixed = GENERATED[name](1, 0, sequence=16, **SMALL)
    _verdict(model, fixed, tmp_path, batch=1, dims={"sequence": 16})
