"""The cpu backend's binary kernels: sub, div, max and min and the comparisons on oneDNN's
binary primitive (which broadcasts its second operand only), pow, fmod and where (oneDNN
3.2 has no binary pow or select), and any call where the first operand broadcasts too, as
NumPy ufuncs over the same host memory: the cpu backend's device is the host."""

from __future__ import annotations

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, ARG_SRC_1, Primitive
from hwbench.backends.numpy_backend import NUMPY_BINARY, NUMPY_COMPARE
from hwbench.kernels import spec

# the oneDNN algorithm of each op it has (the enum values are read from the library)
ONEDNN_BINARY = {"sub": "binary_sub", "div": "binary_div", "max": "binary_max",
                 "min": "binary_min"}
ONEDNN_COMPARE = {"equal": "binary_eq", "less": "binary_lt", "greater": "binary_gt",
                  "less_equal": "binary_le", "greater_equal": "binary_ge"}
# the comparison with operands swapped, for when only the first one broadcasts
SWAPPED = {"equal": "equal", "less": "greater", "greater": "less",
           "less_equal": "greater_equal", "greater_equal": "less_equal"}
COMMUTATIVE = ("max", "min")


def build_binary_to(d: onednn.OneDNN, alg: str, shape: tuple[int, ...],
                    src1_shape: tuple[int, ...], dst_dtype: str) -> Primitive:
    """f32 src0 (full ``shape``) <alg> f32 src1 (1 where it broadcasts) -> ``dst_dtype``."""
    src0 = d.memory_desc(shape, "f32")
    src1 = d.memory_desc(src1_shape, "f32")
    dst = d.memory_desc(shape, dst_dtype)
    attr = d.attr()
    pd = d.create_pd("dnnl_binary_primitive_desc_create", d.engine, d.alg[alg], src0.handle,
                     src1.handle, dst.handle, attr.handle)
    return Primitive(d, pd, {ARG_SRC: src0, ARG_SRC_1: src1, ARG_DST: dst})


class BinaryKernelsCpu:
    """``_binary_op``, ``_compare`` and ``_where`` of ``CpuBackend``."""

    def _onednn_binary(self, alg: str, shape, a, b, dst_dtype: str, out) -> bool:
        """Run ``alg`` if oneDNN can (a has the full shape); False where it cannot."""
        rank = len(shape)
        sa = (1,) * (rank - a.ndim) + a.shape
        sb = (1,) * (rank - b.ndim) + b.shape
        if sa != tuple(shape) or not 0 < rank <= onednn.MAX_NDIMS:
            return False
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._primitive(("binary_to", alg, tuple(shape), sb, dst_dtype),
                               lambda: build_binary_to(self.dnnl, alg, tuple(shape), sb,
                                                       dst_dtype))
        prim.execute({ARG_SRC: np.ascontiguousarray(a),
                      ARG_SRC_1: np.ascontiguousarray(b).reshape(sb), ARG_DST: out})
        return True

    def _binary_op(self, p: spec.BinaryProblem, a, b) -> np.ndarray:
        a, b = np.asarray(self._plain(a)), np.asarray(self._plain(b))
        out = self._buffers.empty(p.shape, np.float32)
        alg = ONEDNN_BINARY.get(p.op)
        if alg is not None:
            if self._onednn_binary(alg, p.shape, a, b, "f32", out):
                return out
            if p.op in COMMUTATIVE and self._onednn_binary(alg, p.shape, b, a, "f32", out):
                return out
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return NUMPY_BINARY[p.op](a, b, out=out)

    def _compare(self, p: spec.CompareProblem, a, b) -> np.ndarray:
        a, b = np.asarray(self._plain(a)), np.asarray(self._plain(b))
        out = self._buffers.empty(p.shape, np.uint8)  # oneDNN writes 0/1 as u8
        if (self._onednn_binary(ONEDNN_COMPARE[p.op], p.shape, a, b, "u8", out)
                or self._onednn_binary(ONEDNN_COMPARE[SWAPPED[p.op]], p.shape, b, a, "u8",
                                       out)):
            return out.view(np.bool_)
        return NUMPY_COMPARE[p.op](a, b, out=out.view(np.bool_))

    def _where(self, p: spec.WhereProblem, condition, x, y) -> np.ndarray:
        out = self._buffers.empty(p.shape, np.float32)
        out[...] = np.where(np.asarray(self._plain(condition), bool), self._plain(x),
                            self._plain(y))
        return out
