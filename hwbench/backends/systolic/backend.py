"""The ``systolic`` backend: a simulated TPU-style int8 systolic array behind the interface.

Values come from the functional model (``functional``: exact integer math, float32 GEMM
and convolution quantized on the fly, sigmoid by table; the vector unit's pooling,
softmax, add, ... in NumPy float32 as the ``numpy`` backend computes them). Every kernel
call also adds what the accelerator would take, from the analytic model, to counters:
``simulated_counters()`` and ``reset_counters()``. The device part of the name picks the
machine: ``systolic`` is ``tpu-v1``; ``systolic:small-8x8`` a preset; ``systolic:FILE.cfg``
a SCALE-Sim configuration.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from hwbench.backends.frozen import FrozenArrays
from hwbench.backends.numpy_backend import NumpyBackend
from hwbench.backends.rnn_interface import RnnKernels
from hwbench.backends.systolic import functional
from hwbench.backends.systolic.analytic import LayerReport, simulate_layer, simulate_vector
from hwbench.backends.systolic.binary import BinaryVectorKernels
from hwbench.backends.systolic.cast import CastVectorKernels
from hwbench.backends.systolic.config import SystolicConfig, load_config
from hwbench.backends.systolic.integer import IntegerVectorKernels
from hwbench.backends.systolic.topology import (
    Layer,
    VectorOp,
    conv_problem_layer,
    gemm_layer,
    vector_op,
)
from hwbench.backends.systolic.upsampling import UpsamplingKernels
from hwbench.kernels import spec
from hwbench.kernels.quantization import requantize

DEFAULT_CONFIG = "tpu-v1"
# float32 kernels the array serves in int8 (quantized on the fly), and how.
QUANTIZED_OPS = {
    "gemm": "int8 array: A uint8 per tensor, B int8 per column, float32 dequantized",
    "conv2d": "int8 array (im2col): x uint8 per tensor, w int8 per filter, float32 dequantized",
    "sigmoid": "activation-unit table on 16-bit fixed-point codes (error <= 7e-5)",
}


@functools.lru_cache(maxsize=4096)
def _report(config: SystolicConfig, work: Layer | VectorOp) -> LayerReport:
    if isinstance(work, VectorOp):
        return simulate_vector(config, work)
    return simulate_layer(config, work)


class SimulatedCounters:
    """What the simulated accelerator spent on the kernel calls since the last reset.

    Calls are grouped by (op, shape): a model's layers in the order they first ran, each
    with its call count, so the memory used does not grow with the number of calls.
    """

    def __init__(self, config: SystolicConfig) -> None:
        self.config = config
        self._entries: dict[tuple[str, Layer | VectorOp], list] = {}

    def reset(self) -> None:
        self._entries = {}

    def add(self, op: str, work: Layer | VectorOp) -> None:
        entry = self._entries.get((op, work))
        if entry is None:
            self._entries[(op, work)] = [_report(self.config, work), 1]
        else:
            entry[1] += 1

    def snapshot(self) -> dict[str, Any]:
        """Totals (cycles, seconds at the clock, MACs, TOP/s, utilization of the array's
        MACs over all cycles) and one row per distinct (op, shape)."""
        cfg = self.config
        layers, cycles, macs, array, stall, vector, quantized = [], 0, 0, 0, 0, 0, 0
        for (op, _), (report, calls) in self._entries.items():
            cycles += calls * report.total_cycles_with_prefetch
            macs += calls * report.macs
            array += calls * report.compute_cycles
            stall += calls * report.stall_cycles
            vector += calls * report.vector_cycles
            quantized += calls if op in QUANTIZED_OPS else 0
            layers.append({"op": op, "shape": report.geometry, "calls": calls,
                           "cycles": report.total_cycles_with_prefetch,
                           "compute_cycles": report.compute_cycles,
                           "stall_cycles": report.stall_cycles, "macs": report.macs,
                           "utilization": report.overall_utilization})
        seconds = cycles / cfg.clock_hz
        return {"config": cfg.name, "array": f"{cfg.rows}x{cfg.cols}", "dataflow": cfg.dataflow,
                "clock_hz": cfg.clock_hz, "cycles": cycles, "seconds": seconds, "macs": macs,
                "tops": 2 * macs / seconds / 1e12 if seconds else 0.0,
                "utilization": macs / (cfg.macs * cycles) if cycles else 0.0,
                "array_cycles": array, "stall_cycles": stall, "vector_cycles": vector,
                "quantized_calls": quantized, "layers": layers}


class SystolicBackend(IntegerVectorKernels,
                      BinaryVectorKernels, UpsamplingKernels, CastVectorKernels, NumpyBackend):
    """A simulated int8 systolic-array accelerator (see the module docstring)."""

    name = "systolic"
    float_precision = "int8"  # float gemm/conv2d are quantized to int8 on the fly
    runs_on_host_cpu = False  # its speed is a simulated accelerator's, not the host's
    # the lowering, not NumpyBackend's host loop: its GEMMs run (and count) on the array
    _rnn = RnnKernels._rnn

    def __init__(self, device: str | None = None, *, threads: int | None = None,
                 check_finite: bool = True, config: str | SystolicConfig | None = None) -> None:
        super().__init__(device, threads=threads, check_finite=check_finite)
        self.config = load_config(config if config is not None else device or DEFAULT_CONFIG)
        self.counters = SimulatedCounters(self.config)
        # Arrays from asarray, and their int8 weights and scales (``_int8_weights``).
        self.frozen = FrozenArrays()

    def asarray(self, x: Any) -> np.ndarray:
        """A frozen copy (``frozen.py``: nothing can write it), so its int8 quantization
        can be cached (``_int8_weights``)."""
        return self.frozen.freeze(x)

    def _int8_weights(self, w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """Weights quantized once per uploaded (frozen) array, as the accelerator would
        hold them; any other array is quantized every call: even a read-only one may be a
        view of memory that changes."""
        return self.frozen.derived(w, ("int8-weights", axis),
                                   lambda w: functional.quantized_weights(w, axis))

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, ""

    @classmethod
    def versions(cls) -> dict[str, str]:
        from hwbench.backends.systolic.config import PRESETS

        return {"numpy": np.__version__,
                "simulates": f"{DEFAULT_CONFIG} by default; presets {', '.join(PRESETS)} "
                             f"or a SCALE-Sim .cfg (systolic:NAME)"}

    def info(self) -> dict[str, Any]:
        return {**super().info(), "math_mode": "int8-quantized",
                "quantized_ops": dict(QUANTIZED_OPS),
                "exact_ops": ["gemm_int8", "qgemm", "conv2d_int8", "qconv2d"],
                "accelerator": self.config.describe()}

    # -- the simulated counters ------------------------------------------------------------
    def simulated_counters(self) -> dict[str, Any]:
        """Simulated cycles, seconds at the clock, MACs, TOP/s and utilization of the calls
        since ``reset_counters()``, with one row per (op, shape)."""
        return self.counters.snapshot()

    def reset_counters(self) -> None:
        self.counters.reset()

    def _vector(self, op: str, elements: int, ops_per_element: int | None = None) -> None:
        self.counters.add(op, vector_op(op, elements, ops_per_element))

    # -- the array ---------------------------------------------------------------------------
    def _gemm(self, p: spec.GemmProblem, a, b, bias) -> np.ndarray:
        a2 = np.asarray(a.T if p.trans_a else a, np.float32)
        b2 = np.asarray(b.T if p.trans_b else b, np.float32)
        out = functional.quantized_gemm(
            a2, b2, None if p.trans_b else self._int8_weights(np.asarray(b), axis=1))
        if bias is not None:
            out += bias
        self._vector("quantize", p.m * p.k)
        self.counters.add("gemm", gemm_layer("gemm", p.m, p.k, p.n))
        return out

    def _conv2d(self, p: spec.ConvProblem, x, w, bias) -> np.ndarray:
        out = functional.quantized_conv2d(np.asarray(x), np.asarray(w), p,
                                          self._int8_weights(np.asarray(w), axis=0))
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)
        self._vector("quantize", p.n * p.c * p.h * p.w)
        self.counters.add("conv2d", conv_problem_layer(p))
        return out

    def _gemm_int8(self, p: spec.Int8GemmProblem, a, b, za, zb) -> np.ndarray:
        self.counters.add("gemm_int8", gemm_layer("gemm_int8", p.m, p.k, p.n))
        return functional.gemm_int8(a, b, za, zb)

    def _qgemm(self, p: spec.Int8GemmProblem, a, b, za, zb, fixed, zy) -> np.ndarray:
        self.counters.add("qgemm", gemm_layer("qgemm", p.m, p.k, p.n))
        return requantize(functional.gemm_int8(a, b, za, zb), fixed, zy.item(), zy.dtype)

    def _conv2d_int8(self, p: spec.Int8ConvProblem, x, w, zx, zw) -> np.ndarray:
        self.counters.add("conv2d_int8", conv_problem_layer(p, "conv2d_int8"))
        return functional.conv2d_int8(x, w, p, zx, zw)

    # -- the activation unit ------------------------------------------------------------------
    def _sigmoid(self, p: spec.ElementwiseProblem, x) -> np.ndarray:
        self._vector("sigmoid", p.size)
        return functional.sigmoid(np.asarray(x, np.float32))

    def _relu(self, p: spec.ElementwiseProblem, x) -> np.ndarray:
        self._vector("relu", p.size)
        return super()._relu(p, x)

    def _unary_op(self, p: spec.UnaryProblem, x) -> np.ndarray:
        # float32 on the vector unit (as the numpy backend), its FLOPs per value as work
        self._vector(p.op, p.size, spec.UNARY_OPS[p.op].flops_per_element)
        return super()._unary_op(p, x)

    def _quantize_linear(self, p: spec.QuantizeProblem, x, scale, zero_point) -> Any:
        self._vector("quantize_linear", p.size)
        return super()._quantize_linear(p, x, scale, zero_point)

    def _dequantize_linear(self, p: spec.QuantizeProblem, x, scale, zero_point) -> Any:
        self._vector("dequantize_linear", p.size)
        return super()._dequantize_linear(p, x, scale, zero_point)

    # -- the vector unit ----------------------------------------------------------------------
    def _sigmoid_backward(self, p: spec.ElementwiseProblem, y, dy) -> np.ndarray:
        self._vector("sigmoid_backward", p.size)
        return super()._sigmoid_backward(p, y, dy)

    def _max_pool2d(self, p: spec.PoolProblem, x) -> np.ndarray:
        self._vector("max_pool2d", p.n * p.c * p.out_h * p.out_w, p.kernel[0] * p.kernel[1])
        return super()._max_pool2d(p, x)

    def _avg_pool2d(self, p: spec.PoolProblem, x) -> np.ndarray:
        self._vector("avg_pool2d", p.n * p.c * p.out_h * p.out_w, p.kernel[0] * p.kernel[1])
        return super()._avg_pool2d(p, x)

    def _global_avg_pool2d(self, p: spec.PoolProblem, x) -> np.ndarray:
        self._vector("global_avg_pool2d", p.n * p.c, p.h * p.w)
        return super()._global_avg_pool2d(p, x)

    def _softmax(self, p: spec.SoftmaxProblem, x) -> np.ndarray:
        self._vector("softmax", p.size)
        return super()._softmax(p, x)

    def _add(self, p: spec.BinaryProblem, a, b) -> np.ndarray:
        self._vector("add", p.size)
        return super()._add(p, a, b)

    def _mul(self, p: spec.BinaryProblem, a, b) -> np.ndarray:
        self._vector("mul", p.size)
        return super()._mul(p, a, b)

    def _concat(self, p: spec.ConcatProblem, arrays) -> np.ndarray:
        self._vector("concat", int(np.prod(p.shape)))
        return super()._concat(p, arrays)

    def _lrn(self, p: spec.LrnProblem, x) -> np.ndarray:
        self._vector("lrn", p.elements, p.size + 3)
        return super()._lrn(p, x)

    def _transpose(self, p: spec.LayoutProblem, x) -> np.ndarray:
        self._vector("transpose", int(np.prod(p.shape)))
        return super()._transpose(p, x)

    def _reshape(self, p: spec.LayoutProblem, x) -> np.ndarray:
        return super()._reshape(p, x)  # a view: no data moves

    # -- normalization and reductions family ----------------------------------------------
    def _matmul(self, p: spec.MatmulProblem, a, b) -> np.ndarray:
        """Each batch's product on the array, as ``_gemm`` runs it (batch dimensions
        broadcast as NumPy does; a 1-D operand a one-row or one-column matrix)."""
        a3 = np.broadcast_to(np.asarray(a).reshape(*p.a_batch, p.m, p.k),
                             (*p.batch, p.m, p.k)).reshape(-1, p.m, p.k)
        b3 = np.broadcast_to(np.asarray(b).reshape(*p.b_batch, p.k, p.n),
                             (*p.batch, p.k, p.n)).reshape(-1, p.k, p.n)
        one = spec.GemmProblem(p.m, p.n, p.k)
        out = np.empty((p.batches, p.m, p.n), np.float32)
        for i in range(p.batches):
            out[i] = self._gemm(one, a3[i], b3[i], None)
        return out.reshape(p.output_shape)

    def _layer_norm(self, p: spec.LayerNormProblem, x, scale, bias):
        self._vector("layer_norm", p.size, 8)
        return super()._layer_norm(p, x, scale, bias)

    def _reduce(self, p: spec.ReduceProblem, x) -> np.ndarray:
        self._vector("reduce", p.size, 2 if p.op == "log_sum_exp" else 1)
        return super()._reduce(p, x)

    # -- tensor_ops family ------------------------------------------------------------------
    def _take(self, p: spec.TakeProblem, x) -> np.ndarray:
        """Slice, Gather, Expand, Pad, Tile: the vector unit copies each output value."""
        self._vector(p.op, p.size)
        return super()._take(p, x)

    def _workspace_bytes(self, op: str, problem: Any) -> int:
        """The functional model's arrays besides the output (for ``Backend._reserve``):
        the float kernels quantize their operands to 8 bits and dequantize the int32
        accumulators in float64 (~13 bytes per output); a convolution also lowers by
        im2col to 8-bit columns, with float64 copies where oneDNN's int8 GEMM is absent."""
        if op == "gemm":
            p = problem
            return 9 * (p.m * p.k + p.k * p.n) + 13 * p.m * p.n
        if op == "conv2d":
            p = problem
            columns = p.n * p.out_h * p.out_w * p.c * p.r * p.s
            return 9 * columns + 3 * p.output_bytes + p.n * p.c * p.h * p.w
        return super()._workspace_bytes(op, problem)
