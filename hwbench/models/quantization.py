"""``hwbench.quantize_model(model)``: a model's int8 twin, calibrated on sample inputs.

Calibration inputs, unless the caller gives some: the first 256 images of the digits
*train* split for the digits models (never the test split the accuracy is measured on),
and 8 seeded standard-normal samples for every other model (the same inputs the harness
feeds them, from a different seed); a model with token ids, masks or several inputs gets
8 samples of each drawn as the harness draws them (``sample_inputs``). Calibration runs
on the ``numpy`` backend in one fixed batch, so the quantized model is the same whatever
backend or batch size runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hwbench.backends import Backend, get_backend
from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.passes import optimize
from hwbench.graph.quantize import TensorRange, calibrate, is_quantized, quantize_graph
from hwbench.models import digits, sample_inputs
from hwbench.models.model import Model

CALIBRATION_SEED = 20171011  # the talk's date: any fixed seed, distinct from the inputs'
DIGITS_SAMPLES = 256
RANDOM_SAMPLES = 8
CHUNK = 64  # calibration batch: bounded memory for a long list of samples


def calibration_backend() -> Backend:
    """The backend calibration runs on: ``numpy``, so that the ranges, and the quantized
    model, are the same whichever backend later runs it (kernels inside a graph read only
    what earlier kernels wrote, so NaN screening is off, as in ``session_backend``)."""
    return get_backend("numpy", check_finite=False)


def default_calibration(model: Model) -> np.ndarray:
    """The calibration samples ``quantize_model`` uses when given none (see the module doc)."""
    if model.name in digits.ARCHITECTURES:
        from hwbench.datasets import digits as digits_split

        x, _ = digits_split("train")
        return x[:DIGITS_SAMPLES]
    shape = model.input_shapes[model.inputs[0]]
    rng = np.random.default_rng(CALIBRATION_SEED)
    return rng.standard_normal((RANDOM_SAMPLES, *shape[1:]), dtype=np.float32)


def _one_float_input(model: Model) -> bool:
    return len(model.inputs) == 1 and np.dtype(model.graph.inputs[0].dtype).kind == "f"


def _check_samples(model: Model, samples: np.ndarray) -> np.ndarray:
    if len(model.inputs) != 1:
        raise ArgumentError(f"quantize: model {model.name!r} has {len(model.inputs)} inputs; "
                            f"pass calibration as a list of feed dicts")
    shape = model.input_shapes[model.inputs[0]]
    dtype = model.graph.inputs[0].dtype
    if not isinstance(samples, np.ndarray) or samples.ndim != len(shape) or (
            samples.shape[1:] != shape[1:]) or len(samples) == 0:
        raise ArgumentError(f"argument 'calibration' must be an array of samples shaped "
                            f"(N, {', '.join(map(str, shape[1:]))}), got "
                            f"{getattr(samples, 'shape', type(samples).__name__)}")
    if samples.dtype != dtype:
        raise ArgumentError(f"argument 'calibration' must have dtype {dtype}, "
                            f"got {samples.dtype}")
    return samples


def _calibration_runs(model: Model, chunk: np.ndarray) -> list[tuple]:
    """(graph, samples) runs over ``chunk``: one run at the chunk's size, or, for a graph
    that cannot change its batch (ViT-B/16's class token folded in at its batch), runs at
    the model's own batch size (a remainder shorter than it is left out)."""
    try:
        return [(optimize(model.with_batch(len(chunk)).graph), chunk)]
    except UnsupportedError:
        own = model.input_shapes[model.inputs[0]][0]
        if not isinstance(own, int) or own > len(chunk):
            raise
        graph = optimize(model.graph)
        return [(graph, chunk[i:i + own]) for i in range(0, len(chunk) - own + 1, own)]


def calibration_ranges(model: Model, calibration: np.ndarray | Sequence[Mapping] | None = None,
                       ) -> dict[str, TensorRange]:
    """Ranges of the tensors quantization needs, over the calibration samples."""
    if calibration is None and not _one_float_input(model):  # token ids, masks, ...
        graph = model.with_batch(RANDOM_SAMPLES).graph
        feeds, _ = sample_inputs.batch_feeds(graph, RANDOM_SAMPLES, CALIBRATION_SEED)
        return calibrate(optimize(graph), [feeds], calibration_backend())
    if calibration is None:
        calibration = default_calibration(model)
    if isinstance(calibration, np.ndarray):
        samples = _check_samples(model, calibration)
        backend = calibration_backend()
        ranges: dict[str, TensorRange] = {}
        for start in range(0, len(samples), CHUNK):
            for graph, part in _calibration_runs(model, samples[start:start + CHUNK]):
                for name, r in calibrate(graph, [{model.inputs[0]: part}], backend).items():
                    ranges[name] = ranges[name].union(r) if name in ranges else r
        return ranges
    if not isinstance(calibration, Sequence) or not all(
            isinstance(f, Mapping) for f in calibration):
        raise ArgumentError("argument 'calibration' must be an array of samples or a list "
                            "of feed dicts")
    return calibrate(optimize(model.graph), calibration, calibration_backend())


def quantize_model(model: Model,
                   calibration: np.ndarray | Sequence[Mapping] | None = None) -> Model:
    """The int8 model: ``model``'s graph, optimized, with Conv/Gemm/MatMul as QLinearConv
    (see ``hwbench.graph.quantize``). ``calibration``: an array of input samples, a list
    of feed dicts at the model's batch size, or None for ``default_calibration``."""
    if not isinstance(model, Model):
        raise ArgumentError(f"argument 'model' must be a hwbench Model, "
                            f"got {type(model).__name__}")
    if is_quantized(model.graph):
        return model
    ranges = calibration_ranges(model, calibration)
    graph = quantize_graph(optimize(model.graph), ranges)
    return Model(model.name, graph, model.path)
