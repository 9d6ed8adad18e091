"""The opencl backend's run-time Cast (``kernels/opencl/cast.cl``): one kernel built per
pair of types; float64 needs the device's cl_khr_fp64 (refused by name without it)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.opencl.gemm import LOCAL, i32
from hwbench.kernels import spec

# element type of each dtype in the kernel (bool: uchar 0/1; half: read via vload_half)
CAST_CL_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double",
                 np.dtype(np.float16): "half", np.dtype(np.int64): "long",
                 np.dtype(np.int32): "int", np.dtype(np.int8): "char",
                 np.dtype(np.uint8): "uchar", np.dtype(np.bool_): "uchar",
                 np.dtype(np.int16): "short", np.dtype(np.uint16): "ushort"}


class CastKernelsOpencl:
    """``_cast`` of ``OpenclBackend``."""

    def _cast(self, p: spec.CastProblem, x: Any) -> Any:
        out = self._empty(p.shape, p.target)
        if p.size == 0:
            return out
        fp64 = np.dtype(np.float64) in (p.source, p.target)
        if fp64 and "cl_khr_fp64" not in self._cast_extensions():
            raise self._unsupported("cast (float64: the device lacks cl_khr_fp64)")
        defines = {"S": CAST_CL_TYPES[p.source], "D": CAST_CL_TYPES[p.target],
                   "S_HALF": int(p.source == np.float16), "D_HALF": int(p.target == np.float16),
                   "D_BOOL": int(p.target == np.bool_), "FP64": int(fp64),
                   "HALF_VIA": "double" if p.source == np.float64 else "float"}
        program = self.compiler.program("cast", defines, {"cast": (LOCAL,)})
        program.launch("cast", (p.size,), i32(p.size), self._buf(x), out.data)
        return out

    def _cast_extensions(self) -> str:
        return self.dev.queue.device.extensions
