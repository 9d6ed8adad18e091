"""Peers: other libraries run through the same suite, so every speed claim is a ratio.

A peer is a ``Backend`` that hwbench does not offer as a target, only as a yardstick
(PyTorch's CPU kernels today). It gets the same argument checks, inputs and timing loop
as the real backends, and the same thread count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.base import Backend
from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.kernels.spec import (
    BinaryProblem,
    ConcatProblem,
    ConvProblem,
    ElementwiseProblem,
    GemmProblem,
    Int8GemmProblem,
    LayoutProblem,
    LrnProblem,
    PoolProblem,
    SoftmaxProblem,
)

PEERS = ("torch",)  # kernel peers
MODEL_PEERS = ("onnxruntime", "torch")  # whole-model peers


class TorchPeer(Backend):
    """PyTorch eager on the CPU (MKL/oneDNN inside), NCHW tensors, float32, no autograd."""

    name = "torch"

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

        return {"torch": torch.__version__,
                "torch_mkldnn": str(torch.backends.mkldnn.is_available())}

    def asarray(self, x: Any) -> Any:
        return self.torch.from_numpy(np.array(x, copy=True))

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.numpy() if hasattr(x, "numpy") else np.asarray(x)

    def empty(self, shape: tuple[int, ...], dtype: Any = np.float32) -> Any:
        return self.torch.from_numpy(np.empty(shape, dtype))

    def _gemm(self, p: GemmProblem, a, b, bias) -> Any:
        out = self.torch.matmul(a.T if p.trans_a else a, b.T if p.trans_b else b)
        return out + bias if bias is not None else out

    def _conv2d(self, p: ConvProblem, x, w, bias) -> Any:
        f = self.torch.nn.functional
        pt, pl, pb, pr = p.padding
        if (pt, pl) != (pb, pr):
            x, padding = f.pad(x, (pl, pr, pt, pb)), (0, 0)
        else:
            padding = (pt, pl)
        return f.conv2d(x, w, bias, p.stride, padding, p.dilation, p.groups)

    def _sigmoid(self, p: ElementwiseProblem, x) -> Any:
        return self.torch.sigmoid(x)

    def _sigmoid_backward(self, p: ElementwiseProblem, y, dy) -> Any:
        return self.torch.ops.aten.sigmoid_backward(dy, y)

    def _relu(self, p: ElementwiseProblem, x) -> Any:
        return self.torch.relu(x)

    # -- the ops whole models need, so that a Session runs PyTorch eager op by op --------
    def _max_pool2d(self, p: PoolProblem, x) -> Any:
        f = self.torch.nn.functional
        pt, pl, pb, pr = p.padding
        if (pt, pl) == (pb, pr) and 2 * max(pt, pl) <= min(p.kernel):
            return f.max_pool2d(x, p.kernel, p.stride, (pt, pl), p.dilation, p.ceil_mode)
        padded = f.pad(x, (pl, pr, pt, pb), value=float("-inf"))
        return f.max_pool2d(padded, p.kernel, p.stride, 0, p.dilation, p.ceil_mode)

    def _avg_pool2d(self, p: PoolProblem, x) -> Any:
        pt, pl, pb, pr = p.padding
        if (pt, pl) != (pb, pr) or 2 * max(pt, pl) > min(p.kernel):
            raise UnsupportedError("torch peer: avg_pool2d with asymmetric padding")
        return self.torch.nn.functional.avg_pool2d(x, p.kernel, p.stride, (pt, pl),
                                                   p.ceil_mode, p.count_include_pad)

    def _global_avg_pool2d(self, p: PoolProblem, x) -> Any:
        return self.torch.nn.functional.adaptive_avg_pool2d(x, 1)

    def _softmax(self, p: SoftmaxProblem, x) -> Any:
        return self.torch.softmax(x, dim=p.axis)

    def _add(self, p: BinaryProblem, a, b) -> Any:
        return self.torch.add(a, b)

    def _mul(self, p: BinaryProblem, a, b) -> Any:
        return self.torch.mul(a, b)

    def _concat(self, p: ConcatProblem, arrays) -> Any:
        return self.torch.cat(list(arrays), dim=p.axis)

    def _lrn(self, p: LrnProblem, x) -> Any:
        # PyTorch divides alpha by the window size, as ONNX does (odd sizes only here).
        return self.torch.nn.functional.local_response_norm(x, p.size, p.alpha, p.beta, p.bias)

    def _reshape(self, p: LayoutProblem, x) -> Any:
        return x.reshape(p.shape)

    def _transpose(self, p: LayoutProblem, x) -> Any:
        return x.permute(*p.perm).contiguous()

    def _gemm_int8(self, p: Int8GemmProblem, a, b, za, zb) -> Any:
        raise UnsupportedError("torch peer: no exact uint8 x int8 GEMM with zero points on CPU")

    def _qgemm(self, p: Int8GemmProblem, a, b, za, zb, fixed, zy) -> Any:
        raise UnsupportedError("torch peer: no QLinearMatMul-exact kernel on CPU")


def get_peer(name: str, **options: Any) -> Backend:
    if name != "torch":
        raise ArgumentError(f"argument 'peers': unknown peer {name!r}; known: {', '.join(PEERS)}")
    ok, why = TorchPeer.available()
    if not ok:
        from hwbench.errors import BackendUnavailableError

        raise BackendUnavailableError(f"peer 'torch' is unavailable: {why}")
    return TorchPeer(None, **options)


class OnnxRuntimePeer:
    """onnxruntime's CPU execution provider on the same ONNX model, as a yardstick.

    Not a kernel backend (it runs whole graphs only): it offers what the model suite
    needs, ``session(model)``, ``info()`` and ``synchronize()``, at the same thread count.
    """

    name = "onnxruntime"

    def __init__(self, threads: int) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            from hwbench.errors import BackendUnavailableError

            raise BackendUnavailableError(
                "peer 'onnxruntime' is unavailable: pip install 'hwbench[peers]'") from exc
        self.ort = onnxruntime
        self.threads = threads
        self.full_name = self.name

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "onnxruntime": self.ort.__version__,
                "threads": self.threads, "math_mode": "fp32",
                "providers": ["CPUExecutionProvider"]}

    def synchronize(self) -> None:
        """onnxruntime's CPU runs are synchronous."""

    def session(self, model: Any) -> Any:
        options = self.ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        inner = self.ort.InferenceSession(model.to_onnx().SerializeToString(), options,
                                          providers=["CPUExecutionProvider"])

        class _Session:
            def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
                return inner.run(None, feeds)

        return _Session()
