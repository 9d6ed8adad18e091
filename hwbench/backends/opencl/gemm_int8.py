"""The exact int8 GEMM driver: int32 results of 8-bit operands with zero points, the int8
convolution lowered onto it, and requantization, all on the device.

Two kernels, chosen by device kind as the float32 ones are (``int8_kernel=`` overrides):
``gemm_int8_packed`` (CPUs) packs both operands, zero points subtracted, into int16
panels for a register-blocked micro-kernel of 16-bit multiply-adds (x86's vpmaddwd);
``gemm_int8_tiled`` (GPUs) stages the raw 8-bit operands through local memory and sums
4-wide dot products, with cl_khr_integer_dot_product's ``dot()`` where the device has it,
applying the zero points afterwards from row and column sums. Tile parameters come from
``tile_params`` (``hwbench tune``), else its defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.opencl.compiler import Compiler, Program, kernel_source
from hwbench.backends.opencl.gemm import (
    CL_TYPES,
    GEMM_SOURCES,
    Operand,
    Scratch,
    check_int32,
    col2output_run,
    i32,
    launch_col2output,
    layout_program,
    round_up,
)
from hwbench.backends.opencl.runtime import Device

INT8_KERNELS = ("gemm_int8_packed", "gemm_int8_tiled")
# The OpenCL extensions with 4 x 8-bit dot products, in order of preference, and the
# USE_DOT value of gemm_tiled.cl (INT8=1) that calls each. ARM's takes operands of one
# signedness only (uchar4 x uchar4 or char4 x char4).
DOT_EXTENSIONS = {"cl_khr_integer_dot_product": 1, "cl_arm_integer_dot_product_int8": 2}


def dot_extension(extensions: frozenset[str] | set[str], a_dtype: np.dtype,
                  b_dtype: np.dtype) -> str | None:
    """The dot-product extension the tiled kernel uses for these operand types on a device
    reporting ``extensions``, or None (then it sums 4 products itself)."""
    for name in DOT_EXTENSIONS:
        if name not in extensions:
            continue
        if name == "cl_arm_integer_dot_product_int8" and a_dtype != b_dtype:
            continue
        return name
    return None


class Int8Gemm:
    """gemm_int8, conv2d_int8 and requantization on one device."""

    def __init__(self, device: Device, compiler: Compiler, kernel: str,
                 params: dict[str, int], scratch: Scratch) -> None:
        self.device = device
        self.compiler = compiler
        self.kernel = kernel  # one of INT8_KERNELS
        self.params = dict(params)
        self.scratch = scratch

    @property
    def packed(self) -> bool:
        return self.kernel == "gemm_int8_packed"

    @property
    def epilogue_run(self) -> int:
        return col2output_run(self.packed)

    def dot_extension(self, a_dtype: np.dtype, b_dtype: np.dtype) -> str | None:
        """The extension whose dot() the kernel calls (the tiled kernel only)."""
        if self.packed:
            return None
        return dot_extension(self.device.extensions, a_dtype, b_dtype)

    def program(self, a_dtype: np.dtype, b_dtype: np.dtype,
                out_dtype: np.dtype | None = None) -> Program:
        """The kernel file with the shared epilogues appended: requantization
        (int8_output.cl) and col2output.cl for int32."""
        defines: dict[str, Any] = {"INT8": 1, "A_T": CL_TYPES[a_dtype], "B_T": CL_TYPES[b_dtype],
                                   "OUT_T": CL_TYPES[out_dtype or np.dtype(np.uint8)],
                                   "ACC_T": "int", "RUN": self.epilogue_run, **self.params}
        common = {"col2output": (16, 4, 1), "requantize": (4, 16)}
        if self.packed:
            # pack_a, pack_b and im2col loop inside each work-item: dimension 0 is short
            launches = {"gemm_int8_packed": (1, 1, 1), "pack_a": (1, 64, 1),
                        "pack_b": (1, 64, 1), "im2col": (1, 64, 1), **common}
        else:
            extension = self.dot_extension(a_dtype, b_dtype)
            defines["USE_DOT"] = DOT_EXTENSIONS[extension] if extension else 0
            p = self.params
            launches = {"gemm_int8_tiled": (p["TSN"] // p["WPTN"], p["TSM"] // p["WPTM"], 1),
                        "row_sums": (64, 1), "col_sums": (64, 1), "im2col": (16, 4, 1),
                        **common}
        gemm_source = GEMM_SOURCES[self.kernel]
        source = "\n".join(kernel_source(name)
                           for name in (gemm_source, "int8_output", "col2output"))
        return self.compiler.program(gemm_source, defines, launches, source=source)

    # -- GEMM -------------------------------------------------------------------------------
    def gemm(self, prog: Program, m: int, n: int, k: int, a: Any, b: Any, za: Any,
             za_step: int, zb: Any, zb_step: int, out: Any) -> None:
        """out (m x n int32) = (A - za) @ (B - zb), exactly; A and B contiguous;
        za[i * za_step], zb[j * zb_step]."""
        a_op, b_op = Operand(a, k, 1), Operand(b, n, 1)
        if not self.packed:
            check_int32("gemm_int8", m * k, k * n, m * n)
            self._tiled(prog, m, n, k, a_op, b_op, (za, za_step, 0), (zb, zb_step, 0),
                        out, n, 0)
            return
        ld = round_up(n, 16)
        c = out if ld == n else self.scratch.get("int8_c", 4 * m * ld)
        ap = self._pack_a(prog, m, k, a_op, (za, za_step, 0))
        k2, bp = self._pack_b(prog, n, k, b_op, (zb, zb_step, 0))
        self._packed(prog, m, n, k2, ap, bp, 2 * ld * k2, c, ld, 0)
        if c is not out:
            layout_program(self.compiler, np.dtype(np.int32)).launch(
                "copy2d", (n, m), i32(m), i32(n), c, i32(ld), i32(0), out, i32(n), i32(0))

    def _tiled(self, prog: Program, m: int, n: int, k: int, a: Operand, b: Operand,
               za: tuple[Any, int, int], zb: tuple[Any, int, int], c: Any, ldc: int,
               c_batch: int, groups: int = 1) -> None:
        """C[g] (ldc apart, c_batch between groups) from raw strided operands: the row
        and column sums first, then the tiled kernel applies the zero points."""
        p = self.params
        sum_a = self.scratch.get("int8_sum_a", 4 * groups * m)
        sum_b = self.scratch.get("int8_sum_b", 4 * groups * n)
        prog.launch("row_sums", (m, groups), i32(m), i32(k), a.buffer, i32(a.rows),
                    i32(a.cols), i32(a.batch), sum_a, i32(m))
        prog.launch("col_sums", (n, groups), i32(n), i32(k), b.buffer, i32(b.rows),
                    i32(b.cols), i32(b.batch), sum_b, i32(n))
        glob = (round_up(n, p["TSN"]) // p["WPTN"], round_up(m, p["TSM"]) // p["WPTM"],
                groups)
        prog.launch("gemm_int8_tiled", glob, i32(m), i32(n), i32(k), a.buffer, i32(a.rows),
                    i32(a.cols), i32(a.batch), b.buffer, i32(b.rows), i32(b.cols),
                    i32(b.batch), sum_a, i32(m), sum_b, i32(n), za[0], i32(za[1]), i32(za[2]),
                    zb[0], i32(zb[1]), i32(zb[2]), c, i32(ldc), i32(c_batch))

    def _pack_a(self, prog: Program, m: int, k: int, a: Operand, za: tuple[Any, int, int],
                groups: int = 1) -> Any:
        """A - za (A row-major: ``a.cols`` == 1), packed into row panels of k-pairs (see
        the .cl file) in scratch."""
        k2, mp = -(-k // 2), round_up(m, self.params["MR"])
        check_int32("gemm_int8", groups * mp * 2 * k2)
        ap = self.scratch.get("int8_ap", 4 * groups * mp * k2)
        prog.launch("pack_a", (-(-k2 // 16), mp, groups), i32(m), i32(k), a.buffer,
                    i32(a.rows), i32(a.batch), za[0], i32(za[1]), i32(za[2]), ap, i32(k2),
                    i32(mp), i32(mp * k2))
        return ap

    def _pack_b(self, prog: Program, n: int, k: int, b: Operand,
                zb: tuple[Any, int, int]) -> tuple[int, Any]:
        """B - zb (B row-major: ``b.cols`` == 1), packed into 16-column panels of k-pairs
        in scratch; returns (k-pairs, the buffer)."""
        k2, ld = -(-k // 2), round_up(n, 16)
        check_int32("gemm_int8", ld * 2 * k2)
        bp = self.scratch.get("int8_bp", 4 * ld * k2)
        prog.launch("pack_b", (ld // 16, k2, 1), i32(n), i32(k), b.buffer, i32(b.rows),
                    i32(b.batch), zb[0], i32(zb[1]), i32(zb[2]), bp, i32(k2), i32(ld // 16),
                    i32(0))
        return k2, bp

    def _packed(self, prog: Program, m: int, n: int, k2: int, ap: Any, bp: Any,
                bp_batch: int, c: Any, ldc: int, c_batch: int, groups: int = 1) -> None:
        """C[g] = Ap[g] @ Bp[g] over k2 k-pairs (Ap from _pack_a, bp_batch shorts between
        groups of Bp); C has m rows of whole 16-column panels (ldc a multiple of 16)."""
        p = self.params
        check_int32("gemm_int8", groups * m * ldc)
        mp = round_up(m, p["MR"])
        row_blocks = -(-(mp // p["MR"]) // p["MBLK"])
        col_blocks = -(-(ldc // 16) // p["NBLK"])
        prog.launch("gemm_int8_packed", (row_blocks, col_blocks, groups), i32(m), i32(k2),
                    ap, i32(mp * k2), bp, i32(bp_batch), c,
                    i32(ldc), i32(c_batch), i32(row_blocks), i32(col_blocks),
                    i32(-(-n // 16)))

    # -- convolution --------------------------------------------------------------------------
    def conv2d(self, prog: Program, p: Any, x: Any, w: Any, zx: int, zw: Any, zw_step: int,
               zx_buf: Any, out: Any) -> None:
        """out (NCHW int32) = conv(x - zx, w - zw) exactly: the filters as A (zero point per
        row), the input's patches as B (im2col; the padding holds zx), one grouped GEMM,
        then col2output to NCHW."""
        kg, cg = p.k // p.groups, p.c // p.groups
        crs, ohw = cg * p.r * p.s, p.out_h * p.out_w
        nohw = p.n * ohw
        ld = round_up(nohw, 16) if self.packed else nohw
        k2 = -(-crs // 2)
        cols_k = 2 * k2 if self.packed else crs
        check_int32("conv2d_int8", p.groups * cols_k * ld, p.groups * kg * ld,
                    p.n * p.c * p.h * p.w, p.n * p.k * ohw)
        (sh, sw), (dh, dw) = p.stride, p.dilation
        geometry = (x, i32(p.c), i32(p.h), i32(p.w), i32(cg), i32(p.r), i32(p.s),
                    i32(p.out_h), i32(p.out_w), i32(nohw), i32(sh), i32(sw),
                    i32(p.padding[0]), i32(p.padding[1]), i32(dh), i32(dw), i32(zx))
        acc = self.scratch.get("int8_c", 4 * p.groups * kg * ld)
        w_op = Operand(w, crs, 1, kg * crs)
        za = (zw, zw_step, kg * zw_step)
        if self.packed:
            bp = self.scratch.get("int8_bp", 4 * p.groups * ld * k2)
            ap = self._pack_a(prog, kg, crs, w_op, za, p.groups)
            prog.launch("im2col", (p.n * p.out_h + 1, k2, p.groups), *geometry, bp, i32(k2),
                        i32(ld), i32(ld * k2))
            self._packed(prog, kg, nohw, k2, ap, bp, ld * 2 * k2, acc, ld, kg * ld, p.groups)
        else:
            cols = self.scratch.get("int8_cols", p.groups * crs * nohw)
            prog.launch("im2col", (nohw, crs, p.groups), *geometry, cols, i32(nohw),
                        i32(crs * nohw))
            self._tiled(prog, kg, nohw, crs, w_op, Operand(cols, nohw, 1, crs * nohw), za,
                        (zx_buf, 0, 0), acc, ld, kg * ld, p.groups)
        launch_col2output(prog, self.epilogue_run, p, acc, ld, kg * ld, out)

    # -- requantization -------------------------------------------------------------------------
    def requantize(self, prog: Program, acc: Any, total: int, inner: int, channels: int,
                   bias: Any, multiplier: Any, shift: Any, per_channel: bool,
                   zero_point: int, dtype: np.dtype, out: Any) -> None:
        """out = requantized acc; element o's channel is (o / inner) % channels."""
        info = np.iinfo(dtype)
        by_column = inner == 1
        cols = channels if by_column else inner
        rows = total // cols
        prog.launch("requantize", (-(-cols // 16), rows), i32(cols), i32(rows), i32(channels),
                    i32(by_column), acc, bias if bias is not None else acc,
                    i32(bias is not None), multiplier, shift, i32(per_channel),
                    i32(zero_point), i32(info.min), i32(info.max), out)
