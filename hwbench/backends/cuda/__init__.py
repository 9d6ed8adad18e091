"""The ``cuda`` backend: NVIDIA GPUs through CuPy, cuBLAS, cuBLASLt and cuDNN.

Roles, one module each (as the opencl backend's): ``runtime`` (CuPy import, discovery,
device selection, math modes, the one error translator, CUDA-event timing), ``layout``
(pure Python: how a row-major problem is handed to the column-major libraries, the
padding they need), ``cudnn`` and ``cublaslt`` (ctypes bindings, every function with
declared argtypes), ``kernels`` (CuPy elementwise/raw kernels) and ``backend`` (the
kernel interface). Importing this package does not import CuPy.
"""

from hwbench.backends.cuda.backend import CudaBackend

__all__ = ["CudaBackend"]
