"""How close float32 results must be to the float64 references (shared by the tests)."""

from __future__ import annotations

import numpy as np

FP32_TOL = 2e-6  # relative to max|ref|, per sqrt(K) of accumulation length

# The systolic backend simulates an int8 accelerator and serves float32 gemm, conv2d and
# sigmoid by quantizing on the fly (activations uint8 per tensor, weights int8 per output
# channel; sigmoid through a table on 16-bit fixed-point codes), as its info() says
# (math_mode "int8-quantized"). Its float results carry quantization noise, not rounding
# error: about 1/255 of an operand's range per product, independent of K, so the bound is
# relative to max|ref| and not scaled by sqrt(K). The worst seen over the conformance
# suite's shapes is ~3 % (a 1x1 convolution of a few values); sigmoid's error is < 7e-5.
QUANTIZED_FLOAT_TOL = 5e-2
# A fused activation after an int8 GEMM/conv: the error relative to the largest value
# before the activation, which changes it at most 1.5x (hardswish's steepest slope); tanh
# and sigmoid squash the output's scale, not the error's.
ACTIVATED_QUANTIZED_TOL = 1.5 * QUANTIZED_FLOAT_TOL
QUANTIZED_NODE_OPS = frozenset({"Gemm", "MatMul", "Conv", "Sigmoid", "RNN", "GRU", "LSTM",
                                "ConvTranspose"})


def quantizes_float_math(backend) -> bool:
    """Whether ``backend`` serves float32 GEMM/conv/sigmoid in int8 (see above)."""
    return backend is not None and backend.info().get("math_mode") == "int8-quantized"


def assert_close(result, ref, k: int = 1, dtype=None, *, backend=None) -> None:
    """Max |result − ref| / max |ref| within FP32_TOL·√K (K: the accumulation length);
    with ``dtype``, the result must also have that dtype. Pass ``backend`` for the float
    ops a quantizing backend serves in int8 (gemm, conv2d, sigmoid): QUANTIZED_FLOAT_TOL."""
    if dtype is not None:
        assert np.asarray(result).dtype == dtype
    result = np.asarray(result, dtype=np.float64)
    assert result.shape == ref.shape
    scale = max(float(np.max(np.abs(ref))), 1e-30)
    err = float(np.max(np.abs(result - ref))) / scale
    tol = FP32_TOL * max(1.0, np.sqrt(k))
    if quantizes_float_math(backend):
        tol = QUANTIZED_FLOAT_TOL
    assert err <= tol, f"relative error {err:.2e}"


def assert_node_close(backend, op_type: str, got, want, rtol: float, atol: float) -> None:
    """An ONNX node test's float output: the test's own rtol/atol, or for an op a
    quantizing backend serves in int8, QUANTIZED_FLOAT_TOL relative to max |want|."""
    if op_type in QUANTIZED_NODE_OPS and quantizes_float_math(backend):
        assert_close(got, np.asarray(want, np.float64), backend=backend)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
