"""Kernel layer: argument contracts, float64 references, quantization math and im2col."""

from hwbench.kernels import quantization, reference, spec
from hwbench.kernels.im2col import im2col

__all__ = ["quantization", "reference", "spec", "im2col"]
