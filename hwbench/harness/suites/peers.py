"""Peers: other libraries run through the same suite, so every speed claim is a ratio.

A peer is a ``Backend`` that hwbench does not offer as a target, only as a yardstick
(PyTorch's CPU kernels; CLBlast's SGEMM on an OpenCL device). It gets the same argument
checks, inputs and timing loop as the real backends, and the same thread count.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version
from typing import Any

import numpy as np

from hwbench.backends.base import Backend
from hwbench.backends.opencl import runtime
from hwbench.backends.opencl.backend import OpenclBackend
from hwbench.errors import (
    ArgumentError,
    BackendUnavailableError,
    NativeLibraryError,
    UnsupportedError,
)
from hwbench.kernels import spec

PEERS = ("torch", "clblast")  # kernel peers; clblast takes a device: clblast:intel
MODEL_PEERS = ("onnxruntime", "torch")  # whole-model peers


def import_peer(module: str, peer: str) -> Any:
    """``module`` imported, or the error that says which extra installs ``peer``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"peer {peer!r} is unavailable: pip install 'hwbench[peers]'") from exc


def torch_build(torch: Any) -> str:
    """Which build of PyTorch this is, as its own metadata says: "CPU", "CUDA 13.0" or
    "ROCm 7.0". A CUDA build runs its CPU kernels like a CPU build but weighs ~3 GB more,
    so results say which one was timed instead of assuming."""
    version = getattr(torch, "version", None)
    cuda = getattr(version, "cuda", None)
    hip = getattr(version, "hip", None)
    if cuda:
        return f"CUDA {cuda}"
    if hip:
        return f"ROCm {hip}"
    return "CPU"


class TorchPeer(Backend):
    """PyTorch eager on the CPU (MKL/oneDNN inside), NCHW tensors, float32, no autograd."""

    name = "torch"
    runs_on_host_cpu = True

    def __init__(self, device: str | None = None, **options: Any) -> None:
        super().__init__(device, **options)
        import torch

        self.torch = torch
        torch.set_num_threads(self.threads)
        torch.set_grad_enabled(False)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import torch  # noqa: F401
        except ImportError:
            return False, "PyTorch is not installed (pip install 'hwbench[peers]')"
        return True, ""

    @classmethod
    def versions(cls) -> dict[str, str]:
        import torch

        return {"torch": torch.__version__, "torch_build": torch_build(torch),
                "torch_mkldnn": str(torch.backends.mkldnn.is_available())}

    def _owns(self, x: Any) -> bool:
        """Torch tensors are this peer's device arrays (the shared foreign-array check
        knows only hwbench's own backends)."""
        return isinstance(x, self.torch.Tensor)

    def asarray(self, x: Any) -> Any:
        return self.torch.from_numpy(np.array(x, copy=True))

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.numpy() if hasattr(x, "numpy") else np.asarray(x)

    def empty(self, shape: tuple[int, ...], dtype: Any = np.float32) -> Any:
        return self.torch.from_numpy(np.empty(shape, dtype))

    def _gemm(self, p: spec.GemmProblem, a, b, bias) -> Any:
        out = self.torch.matmul(a.T if p.trans_a else a, b.T if p.trans_b else b)
        return out + bias if bias is not None else out

    def _conv2d(self, p: spec.ConvProblem, x, w, bias) -> Any:
        f = self.torch.nn.functional
        pt, pl, pb, pr = p.padding
        if (pt, pl) != (pb, pr):
            x, padding = f.pad(x, (pl, pr, pt, pb)), (0, 0)
        else:
            padding = (pt, pl)
        return f.conv2d(x, w, bias, p.stride, padding, p.dilation, p.groups)

    def _sigmoid(self, p: spec.ElementwiseProblem, x) -> Any:
        return self.torch.sigmoid(x)

    def _sigmoid_backward(self, p: spec.ElementwiseProblem, y, dy) -> Any:
        return self.torch.ops.aten.sigmoid_backward(dy, y)

    def _relu(self, p: spec.ElementwiseProblem, x) -> Any:
        return self.torch.relu(x)

    # -- the ops whole models need, so that a Session runs PyTorch eager op by op --------
    def _max_pool2d(self, p: spec.PoolProblem, x) -> Any:
        f = self.torch.nn.functional
        pt, pl, pb, pr = p.padding
        if (pt, pl) == (pb, pr) and 2 * max(pt, pl) <= min(p.kernel):
            return f.max_pool2d(x, p.kernel, p.stride, (pt, pl), p.dilation, p.ceil_mode)
        padded = f.pad(x, (pl, pr, pt, pb), value=float("-inf"))
        return f.max_pool2d(padded, p.kernel, p.stride, 0, p.dilation, p.ceil_mode)

    def _avg_pool2d(self, p: spec.PoolProblem, x) -> Any:
        pt, pl, pb, pr = p.padding
        if (pt, pl) != (pb, pr) or 2 * max(pt, pl) > min(p.kernel):
            raise UnsupportedError("torch peer: avg_pool2d with asymmetric padding")
        return self.torch.nn.functional.avg_pool2d(x, p.kernel, p.stride, (pt, pl),
                                                   p.ceil_mode, p.count_include_pad)

    def _global_avg_pool2d(self, p: spec.PoolProblem, x) -> Any:
        return self.torch.nn.functional.adaptive_avg_pool2d(x, 1)

    def _softmax(self, p: spec.SoftmaxProblem, x) -> Any:
        return self.torch.softmax(x, dim=p.axis)

    def _add(self, p: spec.BinaryProblem, a, b) -> Any:
        return self.torch.add(a, b)

    def _mul(self, p: spec.BinaryProblem, a, b) -> Any:
        return self.torch.mul(a, b)

    def _concat(self, p: spec.ConcatProblem, arrays) -> Any:
        return self.torch.cat(list(arrays), dim=p.axis)

    def _lrn(self, p: spec.LrnProblem, x) -> Any:
        # PyTorch divides alpha by the window size, as ONNX does (odd sizes only here).
        return self.torch.nn.functional.local_response_norm(x, p.size, p.alpha, p.beta, p.bias)

    def _reshape(self, p: spec.LayoutProblem, x) -> Any:
        return x.reshape(p.shape)

    def _transpose(self, p: spec.LayoutProblem, x) -> Any:
        return x.permute(*p.perm).contiguous()

    def _gemm_int8(self, p: spec.Int8GemmProblem, a, b, za, zb) -> Any:
        raise UnsupportedError("torch peer: no exact uint8 x int8 GEMM with zero points on CPU")

    def _qgemm(self, p: spec.Int8GemmProblem, a, b, za, zb, fixed, zy) -> Any:
        raise UnsupportedError("torch peer: no QLinearMatMul-exact kernel on CPU")


class ClblastPeer(Backend):
    """CLBlast's SGEMM (pyclblast) on an OpenCL device, beside hwbench's own ``opencl``
    kernels on the same device: ``clblast`` is the default device of ``opencl``,
    ``clblast:N`` / ``clblast:intel`` select as ``opencl:...`` does. Memory, the NaN screen
    and the queue are an ``opencl`` backend's, so both run with identical buffers; CLBlast
    runs with its own per-device parameters (tuned ones where its database has the device,
    else its defaults). GEMM only."""

    name = "clblast"

    def __init__(self, device: str | None = None, **options: Any) -> None:
        super().__init__(device, threads=options.get("threads"),
                         check_finite=options.get("check_finite", True))
        import pyclblast

        self.pyclblast = pyclblast
        self.ocl = OpenclBackend(device, check_finite=self.check_finite)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import pyclblast  # noqa: F401
        except ImportError as exc:
            return False, (f"pyclblast is not installed ({exc}): install the system CLBlast "
                           "library (Debian: apt-get install libclblast-dev), then "
                           "pip install 'hwbench[clblast]'")
        return runtime.availability()

    @classmethod
    def versions(cls) -> dict[str, str]:
        try:
            return {"pyclblast": version("pyclblast")}
        except Exception:  # noqa: BLE001 - versions never raise
            return {}

    def info(self) -> dict[str, Any]:
        ocl = self.ocl.info()
        keep = ("platform", "device_name", "device_type", "driver_version", "opencl_version")
        return {**super().info(), **{k: ocl[k] for k in keep}, "threads": ocl["threads"]}

    def _owns(self, x: Any) -> bool:
        return self.ocl._owns(x)  # the arrays are its opencl backend's

    def asarray(self, x: Any) -> Any:
        return self.ocl.asarray(x)

    def to_numpy(self, x: Any) -> np.ndarray:
        return self.ocl.to_numpy(x)

    def empty(self, shape: tuple[int, ...], dtype: Any = np.float32) -> Any:
        return self.ocl.empty(shape, dtype)

    def synchronize(self) -> None:
        self.ocl.synchronize()

    def _screen(self, op: str, **arrays: Any) -> None:
        self.ocl._screen(op, **arrays)  # on the device: no host copy inside the timing

    def _gemm(self, p: spec.GemmProblem, a, b, bias) -> Any:
        a, b = self.asarray(a), self.asarray(b)
        beta = 0.0
        if bias is None:
            out = self.empty((p.m, p.n))
        else:  # CLBlast adds beta * C: start C as the broadcast bias
            host_bias = self.to_numpy(bias).astype(np.float32, copy=False)
            out = self.asarray(np.ascontiguousarray(np.broadcast_to(
                host_bias.reshape((1,) * (2 - host_bias.ndim) + host_bias.shape),
                (p.m, p.n))))
            beta = 1.0
        item = np.dtype(np.float32).itemsize
        try:
            self.pyclblast.gemm(self.ocl.dev.queue, p.m, p.n, p.k, a, b, out,
                                a_ld=a.shape[1], b_ld=b.shape[1], c_ld=p.n, beta=beta,
                                a_transp=p.trans_a, b_transp=p.trans_b,
                                a_offset=a.offset // item, b_offset=b.offset // item)
        except RuntimeError as exc:
            raise NativeLibraryError(f"clblast: SGEMM {p.m}x{p.n}x{p.k} failed: {exc}") from exc
        return out

    def _conv2d(self, p: spec.ConvProblem, x, w, bias) -> Any:
        raise self._unsupported("conv2d (the peer times CLBlast's SGEMM only)")

    def _sigmoid(self, p: spec.ElementwiseProblem, x) -> Any:
        raise self._unsupported("sigmoid")

    def _sigmoid_backward(self, p: spec.ElementwiseProblem, y, dy) -> Any:
        raise self._unsupported("sigmoid_backward")

    def _relu(self, p: spec.ElementwiseProblem, x) -> Any:
        raise self._unsupported("relu")

    def _gemm_int8(self, p: spec.Int8GemmProblem, a, b, za, zb) -> Any:
        raise self._unsupported("gemm_int8 (CLBlast has no integer GEMM)")

    def _qgemm(self, p: spec.Int8GemmProblem, a, b, za, zb, fixed, zy) -> Any:
        raise self._unsupported("qgemm (CLBlast has no integer GEMM)")


PEER_CLASSES: dict[str, type[Backend]] = {"torch": TorchPeer, "clblast": ClblastPeer}


def get_peer(name: str, **options: Any) -> Backend:
    """A kernel peer by name, ``clblast`` with an optional ``:DEVICE``."""
    base, _, device = name.partition(":")
    if base not in PEER_CLASSES or (device and base == "torch"):
        raise ArgumentError(f"argument 'peers': unknown peer {name!r}; known: {', '.join(PEERS)}")
    cls = PEER_CLASSES[base]
    ok, why = cls.available()
    if not ok:
        raise BackendUnavailableError(f"peer {base!r} is unavailable: {why}")
    return cls(device or None, **options)


# How the onnxruntime peer's sessions are made (session() sets each), recorded in its info:
# intra-op threads = hwbench's --threads, the file hwbench runs (its graph before hwbench's
# own passes: onnxruntime applies its own, every level of them).
ORT_SETTINGS = {"inter_op_threads": 1, "execution_mode": "sequential",
                "graph_optimization_level": "all",
                "model": "the ONNX graph hwbench runs (Model.to_onnx), before hwbench's passes"}


class OnnxRuntimePeer:
    """onnxruntime's CPU execution provider on the same ONNX model, as a yardstick.

    Not a kernel backend (it runs whole graphs only): it offers what the model suite
    needs, ``session(model)``, ``info()`` and ``synchronize()``, at the same thread count.
    """

    name = "onnxruntime"
    runs_on_host_cpu = True  # as ``Backend.runs_on_host_cpu``

    def __init__(self, threads: int) -> None:
        self.ort = import_peer("onnxruntime", self.name)
        self.threads = threads
        self.full_name = self.name

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "onnxruntime": self.ort.__version__,
                "threads": self.threads, "math_mode": "fp32",
                "providers": ["CPUExecutionProvider"], **ORT_SETTINGS}

    def synchronize(self) -> None:
        """onnxruntime's CPU runs are synchronous."""

    def session(self, model: Any) -> Any:
        options = self.ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        inner = self.ort.InferenceSession(model.to_onnx().SerializeToString(), options,
                                          providers=["CPUExecutionProvider"])

        class _Session:
            def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
                return inner.run(None, feeds)

        return _Session()


def peer_class(base: str) -> type | None:
    """The class of peer ``base`` (kernel or whole-model), without creating one; else None."""
    return {**PEER_CLASSES, "onnxruntime": OnnxRuntimePeer}.get(base)
