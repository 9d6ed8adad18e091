"""The ``cpu`` backend: oneDNN primitives (default) or MKL's CBLAS (``cpu:mkl``) via ctypes.

Modules by role: ``backend`` (``CpuBackend``: the kernels), ``int8`` (its int8 kernels),
``float32_requant`` (the ``float32-requant`` math mode), ``layouts`` (the activation
layouts kept between kernels), ``buffer_pool`` (aligned, reused host buffers),
``primitives`` (the oneDNN primitive builders), and the ctypes bindings ``onednn``,
``mkl`` and ``blas_layout`` (how a matrix is handed to a row-major BLAS call).
"""

from hwbench.backends.cpu.backend import (
    CONCAT_MIN_BYTES,
    FLAVOURS,
    SMALL_PROBLEM_BYTES,
    SMALL_PROBLEM_FLOPS,
    SPINNING_SMALL_PROBLEM_BYTES,
    SPINNING_SMALL_PROBLEM_FLOPS,
    CpuBackend,
)
from hwbench.backends.cpu.buffer_pool import ALIGNMENT, BufferPool, aligned_empty
from hwbench.backends.cpu.float32_requant import FLOAT32_REQUANT, REQUANTIZATIONS
from hwbench.backends.cpu.layouts import CONV_LAYOUTS, BlockedArray, ChannelsLastArray

__all__ = ["ALIGNMENT", "CONCAT_MIN_BYTES", "CONV_LAYOUTS", "FLAVOURS", "FLOAT32_REQUANT",
           "REQUANTIZATIONS", "SMALL_PROBLEM_BYTES", "SMALL_PROBLEM_FLOPS",
           "SPINNING_SMALL_PROBLEM_BYTES", "SPINNING_SMALL_PROBLEM_FLOPS", "BlockedArray",
           "BufferPool", "ChannelsLastArray", "CpuBackend", "aligned_empty"]
