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
from hwbench.kernels.spec import ConvProblem, ElementwiseProblem, GemmProblem, Int8GemmProblem

PEERS = ("torch",)  # kernel peers
MODEL_PEERS = ("onnxruntime",)  # whole-model peers


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
        return x.numpy()

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
