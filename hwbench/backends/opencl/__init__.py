"""The ``opencl`` backend (pyopencl; PoCL on CPUs, a driver's ICD on GPUs).

Roles as in tinygrad's OpenCL runtime, one module each: ``runtime`` (discovery, device
selection, context and queue), ``compiler`` (programs, their cache, the crash probe),
``gemm`` and ``gemm_int8`` (the float32 and exact int8 GEMM drivers), ``tile_params``
(the GEMM kernels' tile parameters: defaults, search space, the tuned ones stored per
device), ``autotune`` (``hwbench tune``'s search for them) and ``backend`` (the kernel
interface). Importing this package does not import pyopencl.
"""

from hwbench.backends.opencl.backend import OpenclBackend

__all__ = ["OpenclBackend"]
