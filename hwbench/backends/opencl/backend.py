"""The ``opencl`` backend: hwbench's own OpenCL kernels through pyopencl, on any device.

Device arrays are ``pyopencl.array.Array`` on the backend's queue and stay on the device
between kernels; every op, including packing, im2col and epilogues, is a kernel. Names:
``opencl`` (the first GPU, else the first CPU device), ``opencl:N`` (the N-th device in
``hwbench list``) or ``opencl:SUBSTRING`` (of the device or platform name).

On CPU devices (PoCL) GEMMs run the packed, register-blocked ``sgemm_packed``; on
others the local-memory ``sgemm_tiled``; ``gemm_kernel=`` overrides the choice. The exact
int8 GEMM likewise runs ``gemm_int8_packed`` on CPUs and ``gemm_int8_tiled`` elsewhere
(``int8_kernel=``; see ``gemm_int8``). Tile parameters come from ``hwbench tune`` (see
``tile_params``), else safe defaults.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from hwbench.backends import conv_epilogue, memory
from hwbench.backends.base import Backend
from hwbench.backends.opencl import device_choice as choice
from hwbench.backends.opencl import (
    direct,
    implicit,
    lrn,
    maxpool,
    packed_weights,
    pool_rows,
    runtime,
    small_gemm,
    softmax,
    tile_params,
)
from hwbench.backends.opencl.affine import ChannelAffineOpencl
from hwbench.backends.opencl.arrays import ArrayMaker
from hwbench.backends.opencl.binary import BinaryKernelsOpencl
from hwbench.backends.opencl.cast import CastKernelsOpencl
from hwbench.backends.opencl.compiler import Compiler, Program, kernel_source
from hwbench.backends.opencl.gemm import CL_TYPES, Gemm, Operand, i32, layout_program
from hwbench.backends.opencl.gemm_int8 import INT8_KERNELS, Int8Gemm
from hwbench.backends.opencl.host_feeds import HostFeedsRecordingOpencl
from hwbench.backends.opencl.integer import IntegerKernelsOpencl
from hwbench.backends.opencl.reductions import ReductionKernels
from hwbench.backends.opencl.rnn import RnnKernelsOpencl
from hwbench.backends.opencl.runtime import DEVICE_TYPES, Device, native_error
from hwbench.backends.opencl.tensor_ops import TensorOpsKernels
from hwbench.backends.opencl.unary import UnaryKernels
from hwbench.backends.opencl.uploads import UploadsOpencl
from hwbench.backends.opencl.upsampling import UpsamplingKernels
from hwbench.errors import ArgumentError, BackendUnavailableError, HwbenchError
from hwbench.kernels import spec

GEMM_KERNELS = ("sgemm_packed", "sgemm_tiled")
# The conv kernels' activation code (activation.cl; 0: none) per fused activation.
ACTIVATION_CODES = {"relu": 1, "relu6": 2, "sigmoid": 3, "silu": 4, "hardswish": 5,
                    "hardsigmoid": 6, "tanh": 7}
LOCAL_1D = 256
LOCAL_3D = (16, 4, 1)
FLOAT32 = np.dtype(np.float32)


class OpenclBackend(HostFeedsRecordingOpencl, UploadsOpencl, IntegerKernelsOpencl, RnnKernelsOpencl,
                    ReductionKernels, UnaryKernels, TensorOpsKernels, BinaryKernelsOpencl,
                    UpsamplingKernels, CastKernelsOpencl, ChannelAffineOpencl, lrn.LrnOpencl,
                    Backend):
    name = "opencl"
    fuses_conv_epilogue = True
    fused_activations = gemm_fused_activations = frozenset(ACTIVATION_CODES)

    @classmethod
    def sweep_resources(cls, device: str | None) -> dict[str, Any]:
        """A device type (``opencl:GPU``) asks for a node with one; a CPU device times on
        the host, so it takes the timing slot too."""
        kind = (device or "").upper()
        if kind in ("GPU", "ACCELERATOR"):
            return {"num_gpus": 0, "resources": {f"hwbench_opencl_{kind.lower()}": 1},
                    "host_timed": False}
        if kind == "CPU":
            return {"num_gpus": 0, "resources": {"hwbench_opencl_cpu": 1}, "host_timed": True}
        return super().sweep_resources(device)

    @classmethod
    def node_resources(cls, devices: list[str]) -> dict[str, float]:
        """``hwbench_opencl`` and a count per device type (``hwbench_opencl_gpu``, ...)."""
        out: dict[str, float] = {"hwbench_opencl": 1}
        try:
            for entry in runtime.discover():
                if entry.pocl_basic:  # the same CPU as PoCL's pthread device: not another
                    continue
                name = f"hwbench_opencl_{entry.kind.lower()}"
                out[name] = out.get(name, 0) + 1
        except Exception:  # noqa: BLE001 - listed available, but discovery failed now
            pass
        return out

    @classmethod
    def resolve_device(cls, device: str | None) -> str | None:
        """A device type (``GPU``, ``CPU``, ``ACCELERATOR``: a sweep's) -> the index of the
        first such device here; an index or a platform name as it is."""
        kind = (device or "").upper()
        if kind not in DEVICE_TYPES:
            return device
        try:
            entries = runtime.discover()
        except Exception as exc:  # noqa: BLE001 - no OpenCL here: the point is refused
            raise BackendUnavailableError(f"opencl:{device}: no OpenCL platform on this node "
                                          f"({exc})") from exc
        for entry in entries:
            if entry.kind == kind:
                return str(entry.index)
        raise BackendUnavailableError(f"opencl:{device}: this node has no OpenCL {kind} device")

    def __init__(self, device: str | None = None, *, threads: int | None = None,
                 check_finite: bool = True, gemm_kernel: str | None = None,
                 gemm_params: dict[str, int] | None = None, int8_kernel: str | None = None,
                 int8_params: dict[str, int] | None = None, probe: bool | None = None,
                 device_choice: bool | None = None) -> None:
        """``gemm_kernel``: "sgemm_packed" or "sgemm_tiled" (default: by device type);
        ``gemm_params``: its tile parameters (default: tuned, else ``tile_params.DEFAULTS``);
        ``int8_kernel`` / ``int8_params``: the same for the int8 GEMM ("gemm_int8_packed"
        or "gemm_int8_tiled"); ``probe``: compile new programs in a child process first
        (default: on, unless ``HWBENCH_OPENCL_PROBE=0``); ``device_choice``: plain
        ``opencl`` on PoCL runs small graphs on its ``basic`` device (``device_choice``)."""
        entry = runtime.select(device)
        super().__init__(device, threads=threads, check_finite=check_finite)
        self.device_choice = choice.setup(self, device, entry, device_choice, dict(
            threads=threads, check_finite=check_finite, gemm_kernel=gemm_kernel, probe=probe,
            gemm_params=gemm_params, int8_kernel=int8_kernel, int8_params=int8_params))
        self.dev = Device(entry)
        # Freed buffers are reused (pyopencl's pool): on a CPU device every fresh buffer
        # is fresh host memory, page-faulted on first write, which cost add 3x its time.
        self._pool = self.dev.cl.tools.MemoryPool(self.dev.cl.tools.ImmediateAllocator(
            self.dev.queue))
        self._arrays = ArrayMaker(self.dev.cl, self.dev.queue, self._pool)
        self.compiler = Compiler(self.dev, probe)
        kernel, params, self.tuned = self._kernel_choice(
            "gemm", GEMM_KERNELS, gemm_kernel, gemm_params)
        self.gemm_engine = Gemm(self.dev, self.compiler, kernel, params, LOCAL_1D)
        kernel, params, self.int8_tuned = self._kernel_choice(
            "int8", INT8_KERNELS, int8_kernel, int8_params)
        self.int8_engine = Int8Gemm(self.dev, self.compiler, kernel, params,
                                    self.gemm_engine.scratch)
        self._meta: dict[tuple, Any] = {}
        self._flag = None

    def graph_device(self, flops: int, nbytes: int, launches: int) -> tuple[Backend, str | None]:
        """The backend a Session runs a graph of this work on and the device its results
        record (``device_choice``; this backend and None where it keeps one device)."""
        return choice.choose(self, choice.GraphWork(flops, nbytes, launches))

    def _kernel_choice(self, what: str, kernels: tuple[str, str], kernel: str | None,
                       params: dict[str, int] | None) -> tuple[str, dict[str, int], bool]:
        """(kernel, its parameters, whether they are tuned ones) for the ``what``_kernel
        and ``what``_params arguments: the packed kernel (kernels[0]) on CPUs, the tiled
        one elsewhere; parameters given, else tuned for this device, else the defaults."""
        kernel = kernel or (kernels[0] if self.dev.is_cpu else kernels[1])
        if kernel not in kernels:
            raise ArgumentError(
                f"argument '{what}_kernel' must be one of {kernels}, got {kernel!r}")
        limits = (self.dev.max_work_group_size, self.dev.local_mem_size)
        if params is not None:
            if not tile_params.valid(kernel, params, *limits):
                raise ArgumentError(
                    f"argument '{what}_params' {params!r} is not a valid point of "
                    f"{kernel}'s space {tile_params.SPACES[kernel]} for this device")
            return kernel, dict(params), False
        stored = tile_params.tuned(self.dev.cache_key, kernel)
        if stored is not None and tile_params.valid(kernel, stored, *limits):
            return kernel, stored, True
        return kernel, dict(tile_params.DEFAULTS[kernel]), False

    # -- discovery -------------------------------------------------------------------------
    @classmethod
    def available(cls) -> tuple[bool, str]:
        return runtime.availability()

    @classmethod
    def device_status(cls, device: str) -> str:
        """Devices by index or by part of a runtime's or device's name (``opencl:pocl``);
        ``opencl:intel`` means Intel's CPU runtime, and says which wheel is missing."""
        if device.lower() == "intel":
            return runtime.intel_cpu_status()
        try:
            runtime.select(device)
        except HwbenchError as exc:
            return str(exc)
        return ""

    @classmethod
    def devices(cls) -> list[str]:
        """Device indices, the default one first (``opencl:N`` selects one); PoCL's basic
        device only by name (``DeviceEntry.pocl_basic``)."""
        entries = tuple(e for e in runtime.discover() if not e.pocl_basic)
        if not entries:
            return []
        first = runtime.default_index(entries)
        return [str(first)] + [str(e.index) for e in entries if e.index != first]

    @classmethod
    def versions(cls) -> dict[str, str]:
        try:
            cl = runtime.load()
            out = {"pyopencl": cl.VERSION_TEXT}
            for entry in runtime.discover():
                out[f"opencl:{entry.index}"] = entry.label
            return out
        except Exception:  # noqa: BLE001 - versions never raise
            return {}

    def info(self) -> dict[str, Any]:
        e = self.dev.entry
        return {**super().info(), "platform": e.platform, "device_name": e.name,
                "device_type": e.kind, "driver_version": e.driver, "opencl_version": e.version,
                "threads": self.dev.compute_units, "gemm_kernel": self.gemm_engine.kernel,
                "gemm_params": dict(self.gemm_engine.params), "gemm_params_tuned": self.tuned,
                "int8_kernel": self.int8_engine.kernel,
                "int8_params": dict(self.int8_engine.params), "int8_params_tuned": self.int8_tuned,
                "integer_dot_product": self.int8_engine.dot_extension(
                    np.dtype(np.uint8), np.dtype(np.int8)),
                "crash_probe": self.compiler.probe,
                "device_choice": self.device_choice is not None}

    # -- memory ----------------------------------------------------------------------------
    def asarray(self, x: Any) -> Any:
        """``x`` on the device; a copy of host data is frozen (``packed_weights``)."""
        return x if self._is_device_array(x) else packed_weights.freeze(self._to_device(x))

    def _to_device(self, x: Any) -> Any:
        host = np.asarray(x)
        if not host.flags.c_contiguous:  # (np.ascontiguousarray would make 0-d arrays 1-d)
            host = np.ascontiguousarray(host)
        try:
            return self.dev.cl.array.to_device(self.dev.queue, host, allocator=self._pool)
        except self.dev.cl.Error as exc:
            raise native_error(f"copying {host.nbytes} bytes to the device", exc) from exc

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, np.ndarray):
            return x
        try:
            return x.get()
        except self.dev.cl.Error as exc:
            raise native_error("copying to the host", exc) from exc

    def empty(self, shape: tuple[int, ...], dtype: Any = np.float32) -> Any:
        return self._empty(shape, dtype)

    def _empty(self, shape: tuple[int, ...], dtype: Any = np.float32) -> Any:
        """``empty`` without the shared argument checks (``checks.guarded``): what the
        kernels allocate for their outputs, whose shapes their checked problems settled
        (the checks cost more than the array, on every launch of a replayed plan)."""
        try:
            return self._arrays.empty(shape, dtype)
        except self.dev.cl.Error as exc:
            raise native_error(f"allocating an array of shape {tuple(shape)}", exc) from exc

    def synchronize(self) -> None:
        self.dev.synchronize()

    def _is_device_array(self, x: Any) -> bool:
        return isinstance(x, self.dev.cl.array.Array) and x.context == self.dev.context

    def _owns(self, x: Any) -> bool:
        """Only arrays on this backend's context: another device's (or another opencl
        backend's) pyopencl arrays are foreign here."""
        return self._is_device_array(x)

    def memory_budget(self) -> memory.Budget | None:
        """The device's global memory (and, on a CPU device, whose memory is the host's,
        no more than the host has free). What this process holds already is not known to
        OpenCL, so the figure is an upper bound: only sizes that can never fit are refused."""
        device = memory.Budget(int(self.dev.device.global_mem_size),
                               f"global memory of OpenCL device {self.dev.entry.name!r}")
        host = memory.host_budget() if self.dev.is_cpu else None
        return host if host is not None and host.free < device.free else device

    def trim_memory(self) -> None:
        """The pool's free blocks and the GEMM engine's scratch go back to the device
        (``memory.trim``): the pool keeps every block it ever handed out, and on a CPU
        device that is host memory no other process can have."""
        self._pool.free_held()
        self.gemm_engine.scratch.clear()

    def allocation_limit(self) -> tuple[int, str] | None:
        return (int(self.dev.device.max_mem_alloc_size),
                f"CL_DEVICE_MAX_MEM_ALLOC_SIZE of OpenCL device {self.dev.entry.name!r}")

    def _buf(self, x: Any) -> Any:
        """The plain device buffer of ``x``: a host array is uploaded; a strided or offset
        device view is made contiguous first (through the host: only foreign views are)."""
        if x is None:
            return None
        if not self._is_device_array(x):
            return self.asarray(x).data
        if x.flags.c_contiguous and x.offset == 0:
            return x.data
        return self.asarray(x.get()).data

    def _screen(self, op: str, **arrays: Any) -> None:
        """The NaN/inf screen as kernels: one pass per device array, then one read of
        their flags (one wait per op, not one per array); the base class raises."""
        if not self.check_finite:
            return
        names = [n for n, x in arrays.items() if x is not None]
        device = [n for n in names if self._is_device_array(arrays[n])
                  and np.dtype(arrays[n].dtype) == FLOAT32]
        if device:
            flags = self._flags(len(device))
            for slot, name in enumerate(device):
                x = arrays[name]
                self._elementwise().launch("any_nonfinite", (self._grid(x.size),), i32(x.size),
                                           self._buf(x), flags, i32(slot))
            found = np.empty(len(device), np.int32)
            self.dev.cl.enqueue_copy(self.dev.queue, found, flags)
            bad = [name for name, flag in zip(device, found, strict=True) if flag]
            if bad:
                super()._screen(op, **{bad[0]: arrays[bad[0]]})
        rest = {n: arrays[n] for n in names if n not in device}
        if rest:
            super()._screen(op, **rest)

    def _flags(self, count: int) -> Any:
        """``count`` int32 flags on the device, zeroed (a fill, queued in order)."""
        cl = self.dev.cl
        if self._flag is None or self._flag.size < 4 * count:
            self._flag = cl.Buffer(self.dev.context, cl.mem_flags.READ_WRITE, 4 * max(count, 8))
        cl.enqueue_fill_buffer(self.dev.queue, self._flag, np.int32(0), 0, 4 * count)
        return self._flag

    def _all_finite(self, x: Any) -> bool:
        if not self._is_device_array(x) or np.dtype(x.dtype) != FLOAT32:
            return bool(np.isfinite(self.to_numpy(x)).all())
        flags = self._flags(1)
        self._elementwise().launch("any_nonfinite", (self._grid(x.size),), i32(x.size),
                                   self._buf(x), flags, i32(0))
        found = np.empty(1, np.int32)
        self.dev.cl.enqueue_copy(self.dev.queue, found, flags)
        return int(found[0]) == 0

    def _grid(self, n: int) -> int:
        """Work-items for an elementwise kernel over n elements: one float8 each (the
        kernels still stride by the grid, so any grid is correct). PoCL vectorizes across
        a work-group's work-items, not a loop inside one: a grid of 8 work-groups per core,
        each looping over the array, ran a same-shape add of 2^24 floats at 4-7 GB/s,
        one float8 per work-item at 34 GB/s (NumPy: 33.5)."""
        return max(1, -(-n // 8))

    # -- programs --------------------------------------------------------------------------
    def _elementwise(self) -> Program:
        kernels = ("sigmoid", "sigmoid_backward", "relu", "any_nonfinite", "binary",
                   "binary_same")
        return self.compiler.program("elementwise", {},
                                     {k: (LOCAL_1D,) for k in kernels})

    def _layout(self, dtype: np.dtype) -> Program:
        return layout_program(self.compiler, dtype)

    def _program(self, name: str, launches: dict[str, tuple[int, ...]]) -> Program:
        return self.compiler.program(name, {}, launches)

    def _meta_buffer(self, values: tuple[int, ...]) -> Any:
        """A small int32 device array of index metadata (shapes, strides), cached."""
        buf = self._meta.get(values)
        if buf is None:
            if len(self._meta) > 512:
                self._meta.clear()
            buf = self._meta[values] = self.asarray(np.asarray(values, np.int32))
        return buf.data

    # -- float32 kernels -------------------------------------------------------------------
    def _gemm(self, p: spec.GemmProblem, a, b, bias, activation=None) -> Any:
        a_op = Operand(self._buf(a), 1, p.m) if p.trans_a else Operand(self._buf(a), p.k, 1)
        rows, cols = (1, p.k) if p.trans_b else (p.n, 1)
        b_op = Operand(self._buf(b), rows, cols, panels=packed_weights.panels_of(b))
        out = self._empty((p.m, p.n))
        bias_arg = None
        if bias is not None:
            shape = (1,) * (2 - len(p.bias_shape)) + tuple(p.bias_shape)
            rs = 0 if shape[0] == 1 else shape[1]
            cs = 0 if shape[1] == 1 else 1
            bias_arg = (self._buf(bias), rs, cs)
        act = ACTIVATION_CODES.get(activation or "", 0)  # fused on the packed engine
        if small_gemm.gemm(self.gemm_engine, p.m, p.n, p.k, a_op, b_op, out.data, bias_arg, act):
            return out
        return conv_epilogue.apply_activation(self, out, activation)

    def _conv2d(self, p: spec.ConvProblem, x, w, bias, residual=None, activation=None) -> Any:
        out = self._empty(p.output_shape)
        act = ACTIVATION_CODES.get(activation or "", 0)
        if small_gemm.is_pixel_conv(p, residual, act):
            small_gemm.pixel_conv(self.gemm_engine, p, self._buf(x), self._buf(w), out.data,
                                  self._buf(bias), act)
            return out
        engine = self.gemm_engine
        run = (functools.partial(direct.conv2d_direct, engine.compiler, scratch=engine.scratch)
               if direct.prefers_direct(p) else functools.partial(implicit.conv2d, engine)
               if implicit.applies(engine, p) else engine.conv2d)
        run(p, self._buf(x), self._buf(w), out.data, self._buf(bias), self._buf(residual), act)
        return out

    def _unary(self, kernel: str, x, *more) -> Any:
        out = self._empty(tuple(x.shape))
        self._elementwise().launch(kernel, (self._grid(out.size),), i32(out.size), self._buf(x),
                                   *[self._buf(m) for m in more], out.data)
        return out

    def _sigmoid(self, p: spec.ElementwiseProblem, x) -> Any:
        return self._unary("sigmoid", x)

    def _sigmoid_backward(self, p: spec.ElementwiseProblem, y, dy) -> Any:
        return self._unary("sigmoid_backward", y, dy)

    def _relu(self, p: spec.ElementwiseProblem, x) -> Any:
        return self._unary("relu", x)

    # -- int8 ------------------------------------------------------------------------------
    def _zero_points(self, z: np.ndarray) -> tuple[Any, int]:
        values = np.asarray(z, np.int32).reshape(-1)
        return self._meta_buffer(tuple(int(v) for v in values)), int(values.size > 1)

    def _int8_gemm(self, p: spec.Int8GemmProblem, a, b, za, zb, out_dtype=None) -> Any:
        prog = self.int8_engine.program(np.dtype(p.a_dtype), np.dtype(p.b_dtype), out_dtype)
        out = self._empty((p.m, p.n), np.int32)
        za_buf, za_step = self._zero_points(za)
        zb_buf, zb_step = self._zero_points(zb)
        self.int8_engine.gemm(prog, p.m, p.n, p.k, self._buf(a), self._buf(b), za_buf,
                              za_step, zb_buf, zb_step, out.data)
        return prog, out

    def _gemm_int8(self, p: spec.Int8GemmProblem, a, b, za, zb) -> Any:
        return self._int8_gemm(p, a, b, za, zb)[1]

    def _qgemm(self, p: spec.Int8GemmProblem, a, b, za, zb, fixed, zy) -> Any:
        """int32 GEMM, then requantization on the device, bit-exact with
        ``hwbench.kernels.quantization.requantize`` (its integer form)."""
        prog, acc = self._int8_gemm(p, a, b, za, zb, zy.dtype)
        return self._requantize(prog, acc, 1, p.n, None, fixed, zy)

    def _requantize(self, prog: Program, acc: Any, inner: int, channels: int, bias: Any,
                    fixed: Any, zy: np.ndarray) -> Any:
        mult = np.asarray(fixed.multiplier, np.int64).reshape(-1)
        shift = np.asarray(fixed.right_shift, np.int32).reshape(-1)
        out = self._empty(tuple(acc.shape), zy.dtype)
        self.int8_engine.requantize(prog, acc.data, acc.size, inner, channels, self._buf(bias),
                                    self.asarray(mult).data, self.asarray(shift).data,
                                    mult.size > 1, int(zy), zy.dtype, out.data)
        return out

    def _int8_conv(self, p: Any, x, w, zx, zw, out_dtype=None) -> tuple[Program, Any]:
        prog = self.int8_engine.program(np.dtype(p.w_dtype), np.dtype(p.x_dtype), out_dtype)
        out = self._empty(p.output_shape, np.int32)
        zw_buf, zw_step = self._zero_points(zw)
        zx_buf, _ = self._zero_points(zx)
        self.int8_engine.conv2d(prog, p, self._buf(x), self._buf(w), int(zx), zw_buf, zw_step,
                                zx_buf, out.data)
        return prog, out

    def _conv2d_int8(self, p: Any, x, w, zx, zw) -> Any:
        return self._int8_conv(p, x, w, zx, zw)[1]

    def _qconv2d(self, p: Any, x, w, zx, zw, bias, fixed, zy) -> Any:
        """The int32 convolution, then bias and requantization per output channel, all on
        the device and bit-exact with the shared host math."""
        prog, acc = self._int8_conv(p, x, w, zx, zw, zy.dtype)
        return self._requantize(prog, acc, p.out_h * p.out_w, p.k, bias, fixed, zy)

    def _quantize_program(self, dtype: np.dtype) -> Program | None:
        """None where float32 division is not correctly rounded (then the shared host
        code runs: a device result could differ by one step)."""
        cl = self.dev.cl
        if not self.dev.device.single_fp_config & cl.device_fp_config.CORRECTLY_ROUNDED_DIVIDE_SQRT:
            return None
        return self.compiler.program("quantize", {"Q_T": CL_TYPES[np.dtype(dtype)]},
                                     {"quantize": (16, 1), "dequantize": (16, 1)},
                                     flags=["-cl-fp32-correctly-rounded-divide-sqrt"])

    def _rows(self, p: Any, scale: np.ndarray, size: int) -> tuple[int, int, int]:
        """(inner, rows, channels): the data as rows of ``inner`` elements, row r's
        parameter at r % channels; per tensor one row."""
        if p.axis is None or scale.ndim == 0 or size == 0:
            return size, 1, 1
        inner = int(np.prod(p.shape[p.axis + 1:], dtype=np.int64))
        return inner, size // inner, p.shape[p.axis]

    def _launch_rows(self, prog: Program, kernel: str, inner: int, rows: int, *args: Any
                     ) -> None:
        prog.launch(kernel, ((inner + 15) // 16, rows), i32(inner), i32(rows), *args)

    def _params(self, values: np.ndarray) -> Any:
        return self.asarray(np.asarray(values, np.float32).reshape(-1)).data

    def _quantize_linear(self, p: Any, x, scale, zero_point) -> Any:
        dtype = np.dtype(zero_point.dtype)
        prog = self._quantize_program(dtype)
        if prog is None:
            return super()._quantize_linear(p, x, scale, zero_point)
        out = self._empty(p.shape, dtype)
        inner, rows, channels = self._rows(p, scale, out.size)
        info = np.iinfo(dtype)
        self._launch_rows(prog, "quantize", inner, rows, i32(channels), self._buf(x),
                          self._params(scale), self._params(zero_point),
                          np.float32(info.min), np.float32(info.max), out.data)
        return out

    def _dequantize_linear(self, p: Any, x, scale, zero_point) -> Any:
        dtype = np.dtype(x.dtype)
        prog = self._quantize_program(dtype) if dtype != np.int32 else None
        if prog is None:  # int32 (bias) data: NumPy multiplies in float64; few values
            return super()._dequantize_linear(p, x, scale, zero_point)
        out = self._empty(p.shape)
        inner, rows, channels = self._rows(p, scale, out.size)
        self._launch_rows(prog, "dequantize", inner, rows, i32(channels), self._buf(x),
                          self._params(scale), self._params(zero_point), out.data)
        return out

    # -- the ops full CNNs need --------------------------------------------------------------
    def _pool_program(self) -> Program:
        source = kernel_source("pool_window") + "\n" + kernel_source("pool")
        return self.compiler.program("pool", {}, {"max_pool": LOCAL_3D, "avg_pool": LOCAL_3D,
                                                  "global_avg_pool": (64,)}, source=source)

    def _max_pool2d(self, p: spec.PoolProblem, x) -> Any:
        if self.dev.is_cpu:
            return pool_rows.max_pool(self, p, x)
        if maxpool.applies(p):
            return maxpool.max_pool8(self, p, x)
        out = self._empty(p.output_shape)
        (kh, kw), (sh, sw), (dh, dw) = p.kernel, p.stride, p.dilation
        nc = p.n * p.c
        self._pool_program().launch(
            "max_pool", (p.out_w, p.out_h, nc), self._buf(x), i32(p.h), i32(p.w),
            i32(p.out_h), i32(p.out_w), i32(kh), i32(kw), i32(sh), i32(sw), i32(p.padding[0]),
            i32(p.padding[1]), i32(dh), i32(dw), i32(nc), out.data)
        return out

    def _avg_pool2d(self, p: spec.PoolProblem, x) -> Any:
        if self.dev.is_cpu:
            return pool_rows.avg_pool(self, p, x)
        out = self._empty(p.output_shape)
        (kh, kw), (sh, sw) = p.kernel, p.stride
        pt, pl, pb, pr = p.padding
        nc = p.n * p.c
        self._pool_program().launch(
            "avg_pool", (p.out_w, p.out_h, nc), self._buf(x), i32(p.h), i32(p.w),
            i32(p.out_h), i32(p.out_w), i32(kh), i32(kw), i32(sh), i32(sw), i32(pt), i32(pl),
            i32(pb), i32(pr), i32(p.count_include_pad), i32(nc), out.data)
        return out

    def _global_avg_pool2d(self, p: spec.PoolProblem, x) -> Any:
        if self.dev.is_cpu:
            return pool_rows.global_avg_pool(self, p, x)
        out = self._empty((p.n, p.c, 1, 1))
        nc = p.n * p.c
        self._pool_program().launch("global_avg_pool", (nc,), self._buf(x), i32(p.h * p.w),
                                    i32(nc), out.data)
        return out

    def _softmax(self, p: spec.SoftmaxProblem, x) -> Any:
        out = self._empty(p.shape)
        length = p.shape[p.axis]
        inner = int(np.prod(p.shape[p.axis + 1:], dtype=np.int64))
        outer = int(np.prod(p.shape[:p.axis], dtype=np.int64))
        if softmax.applies(self, inner):
            softmax.softmax_rows(self, x, out, length, outer)
            return out
        self._program("normalization", lrn.NORMALIZATION).launch(
            "softmax", (inner, outer), self._buf(x), i32(length), i32(inner), i32(outer),
            out.data)
        return out

    def reshape(self, x: Any, shape: Any) -> Any:
        """As ``Backend.reshape``; ``shape`` may also be a 1-D int device array (ONNX
        Reshape's shape is a tensor), read back to the host: it is metadata."""
        if self._is_device_array(shape) and np.dtype(shape.dtype).kind in "iu":
            shape = shape.get()
        return super().reshape(x, shape)

    def _reshape(self, p: spec.LayoutProblem, x) -> Any:
        if not self._is_device_array(x):
            x = self.asarray(x)
        if not x.flags.c_contiguous or x.offset:
            x = self.asarray(x.get())
        return self._arrays.reshape(x, p.shape)

    # -- timing ----------------------------------------------------------------------------
    def device_seconds(self, fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
        """Run ``fn`` and return (its result, device time in seconds from the profiling
        events of the work it enqueued: first kernel's start to last kernel's end)."""
        marker = self.dev.cl.enqueue_marker(self.dev.queue)
        result = fn(*args, **kwargs)
        end = self.dev.cl.enqueue_marker(self.dev.queue)
        end.wait()
        return result, (end.profile.end - marker.profile.start) * 1e-9

