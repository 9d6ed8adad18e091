"""The cuda backend's integer/bool kernels as CuPy ufuncs and scans on the GPU (CuPy's
integer ufuncs are exact and wrap like NumPy's). Importable without CuPy: ``self.cp`` is
the module the backend loaded."""

from __future__ import annotations

from typing import Any

from hwbench.backends.cuda import runtime
from hwbench.kernels import spec


class IntegerKernelsCuda:
    """``_int_binary``, ``_int_unary``, ``_cumsum`` and ``_arg_reduce`` of ``CudaBackend``
    (compare and where take integers through ``BinaryKernelsCuda`` already)."""

    def _int_binary(self, p: spec.IntBinaryProblem, a, b) -> Any:
        with runtime.gpu_errors("int_binary"):
            cp = self.cp
            a, b = self._dev(a), self._dev(b)
            if p.op in ("add", "sub", "mul", "max", "min"):
                fn = {"add": cp.add, "sub": cp.subtract, "mul": cp.multiply,
                      "max": cp.maximum, "min": cp.minimum}[p.op]
                return cp.ascontiguousarray(fn(a, b).astype(p.dtype, copy=False))
            if p.op in ("and", "or", "xor"):
                fn = {"and": cp.logical_and, "or": cp.logical_or,
                      "xor": cp.logical_xor}[p.op]
                return cp.ascontiguousarray(fn(a, b))
            a, b = cp.broadcast_arrays(a, b)
            bad = (b == 0) | (b == -1)
            safe = cp.where(bad, 1, b).astype(p.dtype)
            if p.op == "div":
                q = cp.floor_divide(a, safe)
                q = q + ((q < 0) & (q * safe != a)).astype(p.dtype)
                q = cp.where(b == -1, -a, q)
            else:
                q = (cp.mod if p.op == "mod" else cp.fmod)(a, safe)
            return cp.ascontiguousarray(cp.where(b == 0, 0, q).astype(p.dtype))

    def _int_unary(self, p: spec.IntUnaryProblem, x) -> Any:
        with runtime.gpu_errors("int_unary"):
            cp = self.cp
            fn = {"neg": cp.negative, "abs": cp.abs, "not": cp.logical_not}[p.op]
            return cp.ascontiguousarray(fn(self._dev(x)))

    def _cumsum(self, p: spec.CumsumProblem, x) -> Any:
        with runtime.gpu_errors("cumsum"):
            cp = self.cp
            v = self._dev(x)
            v = cp.flip(v, p.axis) if p.reverse else v
            out = cp.cumsum(v, axis=p.axis, dtype=p.dtype)
            if p.exclusive:
                out = cp.roll(out, 1, axis=p.axis)
                lead = [slice(None)] * len(p.shape)
                lead[p.axis] = slice(0, 1)
                out[tuple(lead)] = 0
            out = cp.flip(out, p.axis) if p.reverse else out
            return cp.ascontiguousarray(out)

    def _arg_reduce(self, p: spec.ArgReduceProblem, x) -> Any:
        with runtime.gpu_errors(p.op):
            cp = self.cp
            v = self._dev(x)
            fn = cp.argmax if p.op == "argmax" else cp.argmin
            if p.select_last:
                idx = p.in_shape[p.axis] - 1 - fn(cp.flip(v, p.axis), axis=p.axis)
            else:
                idx = fn(v, axis=p.axis)
            idx = idx.astype(cp.int64)
            return cp.ascontiguousarray(cp.expand_dims(idx, p.axis) if p.keepdims else idx)
