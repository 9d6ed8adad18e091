"""Shared by the ``test_torch_exports*`` modules: export a ``torch.nn`` model with both of
PyTorch's ONNX exporters, and check hwbench's outputs on one backend against
onnxruntime's on the same file."""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
from tolerances import QUANTIZED_FLOAT_TOL, quantizes_float_math

from hwbench.pytest_plugin import availability

# ``dynamo=False``: the TorchScript exporter at the opset most exported files still carry;
# ``dynamo=True``: torch.export + onnxscript at their default opset (18 in PyTorch 2.x)
EXPORTERS = ("torchscript", "dynamo")
BACKENDS = ("numpy", "cpu", "opencl", "systolic")
TOLERANCE = 1e-4  # of the largest |output|, float32 backends
# A backend that serves float GEMM/conv in int8 (systolic) adds up to QUANTIZED_FLOAT_TOL of
# an operand's range per layer; through a whole network (up to ~80 quantized layers here)
# the measured worst is ~6 % of max|output| (EfficientNet-B0): twice the per-op bound.
MODEL_QUANTIZED_TOL = 2 * QUANTIZED_FLOAT_TOL


def export(torch, model, args: tuple, path: str, exporter: str, input_names: list[str]) -> str:
    """Write ``model(*args)`` to ``path`` with ``exporter``; a failing export skips."""
    kwargs = ({"dynamo": True} if exporter == "dynamo"
              else {"dynamo": False, "opset_version": 17})
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, args, path, input_names=input_names,
                              output_names=["logits"], **kwargs)
    except Exception as exc:  # the exporter's own failure, not hwbench's
        pytest.skip(f"torch.onnx.export ({exporter}) failed: {type(exc).__name__}: {exc}")
    return path


def check_against_onnxruntime(path: str, feeds: dict[str, np.ndarray], backend: str) -> float:
    """Run ``path`` on ``backend`` and onnxruntime; the largest error relative to max
    |onnxruntime output| must be within ``TOLERANCE`` (a quantizing backend: within
    ``MODEL_QUANTIZED_TOL``) and the top-1 class equal (per position for [B, S, V]
    logits; on a quantizing backend, wherever onnxruntime's top-2 margin exceeds twice the
    error allowed). Returns the error."""
    ok, why = availability(backend)
    if not ok:
        pytest.skip(f"backend {backend} unavailable: {why}")
    import onnxruntime as ort

    import hwbench

    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    model = hwbench.load_model(path, batch=next(iter(feeds.values())).shape[0])
    session = hwbench.Session(model, backend=backend)
    (got,) = session.run({name: feeds[name] for name in model.inputs})
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = float(np.abs(want).max())
    assert scale > 0, "the reference output is all zeros: the test could not fail"
    err = float(np.abs(got.astype(np.float64) - want).max()) / scale
    quantized = quantizes_float_math(session.backend)
    tol = MODEL_QUANTIZED_TOL if quantized else TOLERANCE
    assert err <= tol, f"{backend}: error {err:.2e} of max|output| > {tol:.0e}"
    top = np.sort(want, axis=-1)
    decided = (top[..., -1] - top[..., -2]) > 2 * tol * scale if quantized else True
    agree = got.argmax(-1) == want.argmax(-1)
    assert np.all(agree | ~np.asarray(decided)), f"{backend}: top-1 differs"
    print(f"{backend}: max error {err:.2e} of max|output|")
    return err
