"""``Session``: one model on one backend, in the spirit of onnxruntime's InferenceSession.

    sess = hwbench.Session(model, backend="cpu")
    probs, = sess.run({model.inputs[0]: x})

Unlike onnxruntime's ``run(output_names, feeds)``, ``Session.run`` takes the feeds first
and the output names second (optional): ``run(feeds, output_names=None)``. The
onnxruntime order is refused with a message saying so.

Construction does all the work that can fail: the inference passes, the check that every
op and every kernel is available (one message naming all that are missing), and the
upload of the weights to the backend's device. ``run`` only validates the feeds and runs.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.backends import Backend, backend_class, get_backend, parse_backend_name
from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.affine_quantize_fusion import fuse_affine_quantize
from hwbench.graph.channel_affine_fusion import fuse_channel_affine
from hwbench.graph.executor import Executor
from hwbench.graph.gelu_fusion import fuse_gelu
from hwbench.graph.gemm_fusion import fuse_gemm_activations, matmuls_as_gemm
from hwbench.graph.passes import fuse_conv_epilogues, optimize
from hwbench.graph.qconv_add_fusion import fuse_qconv_add
from hwbench.graph.qconv_requant_fusion import fuse_qconv_dequant_add, fuse_qconv_requant
from hwbench.graph.shape_inference import infer_shapes
from hwbench.graph.statistics import graph_bytes, graph_flops
from hwbench.models.model import Model, load_model
from hwbench.models.quantization import quantize_model

PRECISIONS = ("fp32", "int8")
_ONNX_TYPES = {np.dtype(np.float32): "tensor(float)", np.dtype(np.int64): "tensor(int64)",
               np.dtype(np.int32): "tensor(int32)", np.dtype(np.uint8): "tensor(uint8)",
               np.dtype(np.int8): "tensor(int8)", np.dtype(np.float16): "tensor(float16)"}


@dataclass(frozen=True)
class NodeArg:
    """An input or output as onnxruntime describes it: name, shape, type string."""

    name: str
    shape: list[int]
    type: str


def session_backend(name: str, **options: Any) -> Backend:
    """A backend set up for running whole graphs (what ``Session`` does with a name).

    - ``check_finite=False``: kernels inside a graph read only what earlier kernels
      wrote, and screening every activation for NaN cost 18 % of ResNet-50's time; the
      feeds are screened once per run instead (``Executor.check_feeds``).
    - the backend class's ``session_options``: on ``cpu``, ``keep_blocked=True``
      (activations stay in oneDNN's blocked layout from conv to conv, no reorders in
      between; outputs still come back as NumPy arrays).
    """
    if not isinstance(name, str):
        raise ArgumentError(f"argument 'backend' must be a backend name (\"cpu\", "
                            f"\"opencl:1\", ...) or a Backend, got {type(name).__name__}")
    options.setdefault("check_finite", False)
    base, _ = parse_backend_name(name)
    try:
        defaults = backend_class(base).session_options
    except ImportError:  # get_backend says why it cannot be imported
        defaults = {}
    for key, value in defaults.items():
        options.setdefault(key, value)
    return get_backend(name, **options)


class Session:
    """A model bound to one backend at one precision; ``run(feeds)`` many times."""

    def __init__(self, model: Model | str, backend: str | Backend = "cpu",
                 precision: str = "fp32", *, calibration: Any = None,
                 time_transfers: bool = False, profile: bool = False, fuse: bool = True,
                 plan: bool = True, **backend_options: Any) -> None:
        """``precision="int8"`` runs ``hwbench.quantize_model(model, calibration)`` first; a model
        that is quantized already runs as it is whatever ``precision`` says. ``fuse``: run
        ``passes.fuse_conv_epilogues`` (Conv+Add+activation as one kernel call),
        ``gelu_fusion.fuse_gelu`` (a GELU subgraph as one Gelu node),
        ``gemm_fusion.matmuls_as_gemm`` (a MatMul by a weight and its bias as one Gemm),
        ``gemm_fusion.fuse_gemm_activations`` (Gemm+activation as one call) and, on
        ``cpu:float32-requant``, ``qconv_add_fusion.fuse_qconv_add`` and
        ``qconv_requant_fusion``'s two passes (a QLinearConv and the QLinearAdd, or the
        DequantizeLinear, Relu/Clip and QuantizeLinear, or the DequantizeLinear and an Add
        of a float residual, after it as one convolution)
        after the inference passes; False
        runs the graph op by op. ``plan``: ``run`` replays the compiled plan
        (``hwbench.graph.plan``: checks settled by the first run, kernels called directly
        after); False walks the graph through every check each run."""
        if precision not in PRECISIONS:
            raise UnsupportedError(f"argument 'precision': {precision!r} is not supported "
                                   f"(have {', '.join(PRECISIONS)})")
        if isinstance(model, str):
            model = load_model(model)
        if not isinstance(model, Model):
            raise ArgumentError(f"argument 'model' must be a hwbench Model or a zoo name/path, "
                                f"got {type(model).__name__}")
        if precision == "int8":
            model = quantize_model(model, calibration)
        elif calibration is not None:
            raise ArgumentError("argument 'calibration' is for precision='int8' only")
        if isinstance(backend, Backend):
            if backend_options:
                raise ArgumentError(f"backend options {sorted(backend_options)} need a "
                                    f"backend name, not a backend instance")
            self.backend = backend
        else:
            self.backend = session_backend(backend, **backend_options)
        self.model = model
        # A model that came quantized (QLinearConv, ...) runs as it is: its precision.
        self.precision = model.precision
        self.graph = optimize(model.graph)
        if fuse:
            graph = fuse_gelu(fuse_conv_epilogues(self.graph))
            # A backend that quantizes float matmuls per call (systolic) would quantize a
            # batched MatMul's slices together once it is one 2-D Gemm: other numbers.
            if getattr(self.backend, "float_precision", "fp32") != "int8":
                graph = matmuls_as_gemm(graph)
            if getattr(self.backend, "requantization", None) == "float32":
                # a QLinearConv and the Add, or Dequantize+Relu/Clip+Quantize, after it: one conv
                graph = fuse_qconv_dequant_add(fuse_qconv_requant(fuse_qconv_add(graph)))
                graph = fuse_affine_quantize(graph)  # Mul [Add] [Relu] Quantize: one pass
            if getattr(self.backend, "fuses_channel_affine", False):
                graph = fuse_channel_affine(graph)  # BN + Relu before a conv: one pass
            self.graph = fuse_gemm_activations(graph)
        # Plain opencl on PoCL picks its device per graph (opencl/device_choice.py);
        # ``device`` says which, for results, or is None where a backend has one device.
        self.device: str | None = None
        choose = getattr(self.backend, "graph_device", None)
        if choose is not None:  # from the graph's work: FLOPs, bytes, a launch a node
            shapes = infer_shapes(self.graph)
            self.backend, self.device = choose(graph_flops(self.graph, shapes), graph_bytes(
                self.graph, shapes), len(self.graph.nodes))
        self.executor = Executor(self.graph, self.backend, time_transfers=time_transfers,
                                 profile=profile)
        self._run = self.executor.replay if plan else self.executor.run
        # Freed by reference counting, the session frees its device arrays at once: the
        # executor's plan refers back to it, a cycle the garbage collector would free late.
        weakref.finalize(self, self.executor.release)

    def get_inputs(self) -> list[NodeArg]:
        return [NodeArg(v.name, list(v.shape), _ONNX_TYPES.get(np.dtype(v.dtype), str(v.dtype)))
                for v in self.graph.inputs]

    def get_outputs(self) -> list[NodeArg]:
        shapes = self.executor.shapes
        return [NodeArg(v.name, list(shapes[v.name]),
                        _ONNX_TYPES.get(np.dtype(v.dtype), str(v.dtype)))
                for v in self.graph.outputs]

    def run(self, feeds: dict[str, np.ndarray],
            output_names: list[str] | None = None) -> list[np.ndarray]:
        """Outputs as NumPy arrays in graph output order (or ``output_names``' order).

        Feeds first, then the output names: the reverse of onnxruntime's
        ``run(output_names, feeds)``, and ``run(None, feeds)`` raises ``ArgumentError``
        saying so. Every input must be fed, with the model's exact shape and dtype (no
        silent casts); a mistake raises ``ArgumentError``/``DTypeError`` naming the input.
        """
        if output_names is not None and isinstance(output_names, Mapping) \
                and not isinstance(feeds, Mapping):
            raise ArgumentError(
                "Session.run takes the feeds first: run(feeds, output_names=None), the "
                "reverse of onnxruntime's run(output_names, feeds); got output names "
                f"({feeds!r}) where the feeds go")
        return self._run(feeds, output_names)

    @property
    def op_seconds(self) -> dict[str, float]:
        """With ``profile=True``: seconds per op type, summed over all runs so far."""
        return dict(self.executor.op_seconds)

    @property
    def last_timings(self) -> dict[str, float]:
        """Seconds of the last run: ``transfer_in_s``, ``compute_s``, ``transfer_out_s``."""
        return dict(self.executor.last_timings)

    def __repr__(self) -> str:
        return (f"<Session {self.model.name!r} on {self.backend.full_name!r} "
                f"precision={self.precision}>")
