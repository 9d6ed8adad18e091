"""The zoo's ImageNet models, whole, on the numpy and cpu backends.

(a) With the weights shipped in the onnx wheel (all 0.02) and the input onnx's runner
    feeds, each output must equal the expected output shipped beside the model, at the
    tolerance onnx's model tests use (rtol 1e-3, atol 1e-7).
(b) With seeded random weights (``zoo.randomize_weights``), each output and, for models
    ending in Softmax, the logits before it, must agree with onnxruntime running the same
    model file with the same weights (its graph optimizations off, so it runs the graph as
    written: BatchNorm, Dropout, Sum and all) to a relative error (max |diff| / max |ref|)
    of at most 1e-4.

The largest models run on ``cpu`` only, to keep this file within its time budget; a
backend that lacks a kernel a model needs skips that model, naming the kernel.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

import hwbench
from hwbench.errors import UnsupportedError
from hwbench.graph.ir import ValueInfo
from hwbench.graph.onnx_import import save_onnx
from hwbench.graph.shape_inference import infer_shapes
from hwbench.models import Model, zoo

pytest.importorskip("onnx", reason="the zoo's model files ship in the onnx wheel")

BIG = {"vgg19", "densenet121", "inception_v1", "inception_v2"}  # cpu only
CASES = [(name, be) for name in zoo.ZOO for be in (("cpu",) if name in BIG else ("numpy", "cpu"))]
TOLERANCE = 1e-4
_cache: dict = {}


@pytest.fixture(scope="module", autouse=True)
def release_models_afterwards():
    """Drop the cached model (VGG-19's weights alone are 548 MB) when the file is done.

    This file is named to sort after tests/test_memory.py: that file's resident-set
    probe assumes a heap no earlier test has fragmented with hundreds of MB of arrays.
    """
    yield
    _cache.clear()
    gc.collect()


def cached(key, make):
    """One entry at a time: the cases run model by model, and VGG-19 alone is 548 MB."""
    if key not in _cache:
        _cache.clear()
        _cache[key] = make()
    return _cache[key]


@pytest.fixture(scope="module")
def backends():
    out = {}
    for name in ("numpy", "cpu"):
        try:
            out[name] = hwbench.get_backend(name)
        except hwbench.HwbenchError as exc:
            out[name] = exc
    return out


def backend_or_skip(backends, name):
    be = backends[name]
    if isinstance(be, Exception):
        pytest.skip(f"backend {name} unavailable: {be}")
    return be


def session_or_skip(model, be):
    """A Session, or a skip where a backend lacks a kernel; never on numpy and cpu, which
    implement every op the zoo uses (a kernel gone missing there is a failure)."""
    try:
        return hwbench.Session(model, backend=be)
    except UnsupportedError as exc:
        if "lacks kernel" in str(exc) and be.name not in ("numpy", "cpu"):
            pytest.skip(str(exc))
        raise


def rel_err(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.mark.parametrize(("name", "backend_name"), CASES)
def test_zoo_model_matches_shipped_output(name, backend_name, backends):
    be = backend_or_skip(backends, backend_name)
    model = cached(("shipped", name), lambda: hwbench.load_model(name))
    sess = session_or_skip(model, be)
    x = zoo.reference_input(model.input_shapes[model.inputs[0]])
    (out,) = sess.run({model.inputs[0]: x})
    want = zoo.expected_output(name)
    assert out.shape == want.shape and out.dtype == want.dtype
    np.testing.assert_allclose(out, want, rtol=1e-3, atol=1e-7)


def with_logits(model: Model) -> Model:
    """The model with the input of its final Softmax (if any) as a second output."""
    graph = model.graph.copy()
    last = graph.producers()[graph.outputs[0].name]
    if last.op_type == "Softmax":
        shapes = infer_shapes(graph)
        graph.outputs.append(ValueInfo(last.inputs[0], shapes[last.inputs[0]]))
    return Model(model.name, graph, model.path)


def random_case(name, tmp_dir):
    """(model with random weights, input, onnxruntime's outputs) for one zoo model."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the reference here")
    model = with_logits(hwbench.load_model(name).randomized(seed=0))
    path = save_onnx(model.graph, tmp_dir / f"{name}.onnx")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 2
    # No spinning: ORT's idle threads would otherwise steal the cores hwbench runs on next.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    ref_sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal(model.input_shapes[model.inputs[0]],
                                                 dtype=np.float32)
    return model, x, ref_sess.run(None, {model.inputs[0]: x})


@pytest.mark.parametrize(("name", "backend_name"), CASES)
def test_zoo_model_with_random_weights_matches_onnxruntime(name, backend_name, backends,
                                                          tmp_path_factory):
    be = backend_or_skip(backends, backend_name)
    model, x, refs = cached(("random", name),
                            lambda: random_case(name, tmp_path_factory.mktemp(name)))
    sess = session_or_skip(model, be)
    outs = sess.run({model.inputs[0]: x})
    assert len(outs) == len(refs)
    for out, ref, out_name in zip(outs, refs, model.outputs, strict=True):
        assert out.shape == ref.shape
        err = rel_err(out, ref)
        assert err <= TOLERANCE, f"{name} output {out_name!r}: relative error {err:.2e}"
    # the random weights must give a non-degenerate output, or the check above is weak
    probs = refs[0].reshape(refs[0].shape[0], -1)
    assert probs.std() > 1e-4 and (refs[-1].std() > 1e-2)
