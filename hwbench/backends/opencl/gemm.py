"""The float32 GEMM driver: SGEMM (packed on CPUs, local-memory tiles on GPUs) and the
convolution lowered onto it; the helpers the int8 driver (``gemm_int8``) shares.

Every operand stays on the device: packing, im2col and the epilogues are kernels too.
Scratch buffers (packed panels, column matrices, padded results) are kept per role and
reused: the queue is in order, so a kernel enqueued later never sees a buffer before
the kernels enqueued earlier are done with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwbench.backends.opencl import blocking, packed_weights
from hwbench.backends.opencl.compiler import Compiler, Program, kernel_source
from hwbench.backends.opencl.runtime import Device, native_error
from hwbench.errors import UnsupportedError

LOCAL = 256  # work-items per work-group of the 1-D kernels
# The GEMM kernels' source files: one per shape, its INT8 define picking the accumulator
# (0: float, the SGEMM kernels; 1: exact int8).
GEMM_SOURCES = {"sgemm_packed": "gemm_packed", "sgemm_tiled": "gemm_tiled",
                "gemm_int8_packed": "gemm_packed", "gemm_int8_tiled": "gemm_tiled"}
INT32_MAX = 2**31 - 1
PACK_K = 16  # rows of K per work-item of the float pack_b (gemm_packed.cl's PACK_K)
CL_TYPES = {np.dtype(np.int8): "char", np.dtype(np.uint8): "uchar",
            np.dtype(np.float32): "float", np.dtype(np.int32): "int",
            np.dtype(np.int64): "long", np.dtype(np.int16): "short",
            np.dtype(np.uint16): "ushort", np.dtype(np.bool_): "uchar"}  # the last three:
# only moved (layout.cl, tensor_ops.cl), never computed on


def i32(value: int) -> int:
    """A by-value kernel argument; sizes past int32 are refused, not wrapped. Returned as
    given: every kernel's scalar argument types are declared (``compiler.Program``), so
    pyopencl packs a Python int itself; an np.int32 per argument cost ~1 us of host time,
    ~2000 of them per MobileNet v2 run."""
    if -2147483648 <= value <= 2147483647:
        return value
    raise UnsupportedError(f"opencl: {value} does not fit the kernels' 32-bit int "
                           "arguments (sizes and offsets must stay below 2**31)")


def col2output_run(cpu_form: bool) -> int:
    """Pixels per work-item of col2output.cl: 16 for the CPU (packed) kernels, whose
    per-pixel work-items PoCL runs as scalar code; 1 on GPUs (coalesced)."""
    return 16 if cpu_form else 1


def launch_col2output(prog: Program, run: int, p: Any, acc: Any, ld: int, ldg: int,
                      out: Any, bias: Any = None, residual: Any = None,
                      relu: int = 0) -> None:
    """The grouped GEMM's result (rows ``ld`` apart, groups ``ldg`` apart) to NCHW
    ``out``, with the optional epilogue; ``prog`` was built with ``RUN`` = ``run``."""
    kg, ohw = p.k // p.groups, p.out_h * p.out_w
    prog.launch("col2output", (-(-ohw // run), p.k, p.n), acc, i32(p.k), i32(kg), i32(p.n),
                i32(ohw), i32(ld), i32(ldg), bias if bias is not None else acc,
                i32(bias is not None), residual if residual is not None else acc,
                i32(residual is not None), i32(relu), out)


def vec8_defines(device: Device) -> dict[str, int]:
    """vec8.cl's form for the device: plain unaligned vector moves on CPUs."""
    return {"VLOAD_CAST": int(device.is_cpu)}


def pad_defines(device: Device) -> dict[str, int]:
    """pad.cl's form for the device: a row per work-item on CPUs, an element on GPUs."""
    return {"PAD_ROWS": int(device.is_cpu)}


def pad_local(device: Device) -> tuple[int, int, int]:
    """pad_planes' work-group (``pad_defines``' form: dimension 0 is 1 row-wise)."""
    return (1, 16, 1) if device.is_cpu else (16, 4, 1)


def pad_planes(prog: Program, p: Any, x: Any, xp: Any, hp: int, wp: int) -> None:
    """``xp`` (HP x WP planes) = ``p``'s input ``x`` inside its top and left padding, zeros
    around it; ``prog`` has pad.cl built with ``pad_defines``."""
    planes = p.n * p.c
    check_int32("conv2d", planes * hp * wp)
    rows = prog.local_sizes["pad_planes"][0] == 1
    prog.launch("pad_planes", (1 if rows else wp, hp, planes), x, i32(p.h), i32(p.w),
                i32(hp), i32(wp), i32(p.padding[0]), i32(p.padding[1]), i32(planes), xp)


def padded_input(prog: Program, scratch: Scratch, p: Any, x: Any) -> tuple[Any, int, int]:
    """``p``'s input with its padding written out as zeros (``pad_planes``), tall and wide
    enough for every tap: (buffer, HP, WP); ``x`` itself when the conv has no padding."""
    (sh, sw), (dh, dw) = p.stride, p.dilation
    pt, pl = p.padding[0], p.padding[1]
    hp = max(p.h + pt + p.padding[2], (p.out_h - 1) * sh + (p.r - 1) * dh + 1)
    wp = max(p.w + pl + p.padding[3], (p.out_w - 1) * sw + (p.s - 1) * dw + 1)
    if (hp, wp) == (p.h, p.w) and not (pt or pl):
        return x, p.h, p.w
    xp = scratch.get("conv_pad", 4 * p.n * p.c * hp * wp)
    pad_planes(prog, p, x, xp, hp, wp)
    return xp, hp, wp


def check_int32(what: str, *counts: int) -> None:
    """The kernels index with 32-bit ints: refuse sizes past that, clearly."""
    if max(counts) > INT32_MAX:
        raise UnsupportedError(f"opencl: {what} needs {max(counts)} elements in one buffer; "
                               f"the kernels index with 32-bit ints (at most {INT32_MAX})")


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def layout_program(compiler: Compiler, dtype: np.dtype) -> Program:
    """layout.cl for one element type: gathers (transposes), 2-D and strided copies."""
    return compiler.program("layout", {"T": CL_TYPES[np.dtype(dtype)]},
                            {"gather": (LOCAL,), "copy2d": (16, 16), "strided3": (LOCAL,),
                             "strided3_rows": (1, 16), "strided3_tiles": (1, 4, 1)})


@dataclass(frozen=True)
class Operand:
    """A matrix on the device read through strides: element (i, k) of op(X) at
    ``buffer[i * rows + k * cols]``; group g starts ``g * batch`` elements in."""

    buffer: Any
    rows: int
    cols: int
    batch: int = 0
    # a frozen array's kept panels (``packed_weights.panels_of``): B packed once
    panels: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class OutputMap:
    """Where ``sgemm_packed_out`` writes element (i, j) of group g: ``buffer[g * group +
    (j // pixels) * image + i * row + j % pixels]`` (a conv's NCHW output: ``pixels``
    per image; a plain matrix: ``pixels`` = its columns), and the fused epilogue:
    act(acc + bias + residual) (``relu``: activation.cl's code, 0 none), ``bias`` =
    (buffer, row stride, column stride 0 or 1, group stride), ``residual`` laid out as
    the output."""

    buffer: Any
    pixels: int
    image: int
    row: int
    group: int
    bias: tuple[Any, int, int, int] | None = None
    residual: Any = None
    relu: int = 0


def device_buffer(device: Device, nbytes: int, what: str) -> Any:
    """A read-write buffer of ``nbytes`` (at least 64) outside the memory pool."""
    cl = device.cl
    try:
        return cl.Buffer(device.context, cl.mem_flags.READ_WRITE, max(nbytes, 64))
    except cl.Error as exc:
        raise native_error(f"allocating {nbytes} bytes of {what}", exc) from exc


class Scratch:
    """Device buffers by role, grown on demand and reused."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self._buffers: dict[str, Any] = {}

    def get(self, role: str, nbytes: int) -> Any:
        buf = self._buffers.get(role)
        if buf is None or buf.size < nbytes:
            buf = self._buffers[role] = device_buffer(self.device, nbytes, "scratch")
        return buf

    def clear(self) -> None:
        """Drop every buffer (``OpenclBackend.trim_memory``): the next ``get`` allocates
        one of the size then needed, not the largest any model before it needed."""
        self._buffers.clear()


class Gemm:
    """SGEMM, conv-as-GEMM and int8 GEMM on one device."""

    def __init__(self, device: Device, compiler: Compiler, kernel: str,
                 params: dict[str, int], local_1d: int) -> None:
        self.device = device
        self.compiler = compiler
        self.kernel = kernel  # "sgemm_packed" or "sgemm_tiled"
        self.params = dict(params)
        self.local_1d = local_1d
        self.scratch = Scratch(device)
        # work-items wanted per compute unit (``blocking``); 0: the tuned blocks as they are
        self.fit_blocks = blocking.ITEMS_PER_UNIT
        self.phase_split = True  # stride-2 convs on conv_implicit (``phases``); False: A/B

    # -- programs ---------------------------------------------------------------------------
    def sgemm_program(self) -> Program:
        p = self.params
        if self.kernel == "sgemm_packed":
            wide = int(bool(p.get("WIDE")) and self.device.avx512)  # else the AVX2 form
            return self.compiler.program(GEMM_SOURCES["sgemm_packed"], {
                **p, "WIDE": wide, **vec8_defines(self.device)}, {
                "sgemm_packed": (1, 1, 1), "sgemm_packed_out": (1, 1, 1),
                "pack_a": (16, 1, 1), "pack_b": (1, 16, 1)},
                source="\n".join(kernel_source(name) for name in (
                    "vec8", "activation", GEMM_SOURCES["sgemm_packed"], "gemm_packed_out")))
        local = (p["TSN"] // p["WPTN"], p["TSM"] // p["WPTM"], 1)
        return self.compiler.program(GEMM_SOURCES["sgemm_tiled"], p, {"sgemm_tiled": local})

    @property
    def epilogue_run(self) -> int:
        return col2output_run(self.kernel == "sgemm_packed")

    def conv_program(self) -> Program:
        """conv.cl with the shared col2output.cl (float32) and pad.cl appended."""
        defines = {"RUN": self.epilogue_run, "ACC_T": "float", **pad_defines(self.device)}
        return self.compiler.program("conv", defines, {
            "im2col": (16, 4, 1), "im2col_rows": (1, 16, 1),
            "col2output": (16, 4, 1),
            "pad_planes": pad_local(self.device)}, source="\n".join(
                kernel_source(name) for name in ("activation", "conv", "col2output", "pad")))

    # -- float32 ------------------------------------------------------------------------------
    def packed_tile(self) -> tuple[int, int]:
        """Rows and columns of C one work-item of sgemm_packed computes."""
        p = self.params
        return p["MR"] * p["MBLK"], 16 * p["NBLK"]

    def sgemm(self, m: int, n: int, k: int, a: Operand, b: Operand, c: Any, ldc: int,
              groups: int = 1, c_batch: int = 0, b_packed: bool = False,
              bias: tuple[Any, int, int] | None = None) -> None:
        """C[g] = op(A)[g] @ op(B)[g] for every group.

        sgemm_packed needs ``c`` of whole column blocks (``ldc`` a multiple of
        ``packed_tile()[1]``; rows stop at m) and ignores ``bias``; with ``b_packed`` the
        B operand is already in panels (``im2col`` wrote it so), ``b.batch`` apart.
        sgemm_tiled writes exactly m x n and adds ``bias`` = (buffer, row stride, column
        stride).
        """
        prog = self.sgemm_program()
        if self.kernel == "sgemm_tiled":
            check_int32("sgemm", m * k * groups, k * n * groups, m * n * groups)
            p = self.params
            has_bias = bias is not None
            bias_buf, brs, bcs = bias if has_bias else (c, 0, 0)
            local = prog.local_sizes["sgemm_tiled"]
            glob = (round_up(n, p["TSN"]) // p["WPTN"], round_up(m, p["TSM"]) // p["WPTM"],
                    groups)
            assert glob[0] % local[0] == 0 and glob[1] % local[1] == 0
            prog.launch("sgemm_tiled", glob, i32(m), i32(n), i32(k), a.buffer, i32(a.rows),
                        i32(a.cols), i32(a.batch), b.buffer, i32(b.rows), i32(b.cols),
                        i32(b.batch), c, i32(ldc), i32(c_batch), bias_buf, i32(has_bias),
                        i32(brs), i32(bcs))
            return
        tm, tn = self.packed_tile()
        mp, np_ = round_up(m, tm), round_up(n, tn)
        check_int32("sgemm", groups * mp * np_)
        ap, bp, bp_batch = self._pack(prog, m, n, k, a, b, groups, b_packed)
        prog.launch("sgemm_packed", (mp // tm, np_ // tn, groups), i32(m), i32(k), ap,
                    i32(mp * k), bp, i32(bp_batch), c, i32(ldc), i32(c_batch), i32(0),
                    i32(mp // tm), i32(np_ // tn))

    def _pack(self, prog: Program, m: int, n: int, k: int, a: Operand | None, b: Operand,
              groups: int, b_packed: bool) -> tuple[Any, Any, int]:
        """The packed kernels' A panels (None without ``a``: ``sgemm_packed_out`` reads A
        in place) and B panels (unless ``b_packed``: already so): (Ap, Bp, Bp's group
        stride)."""
        tm, tn = self.packed_tile()
        mp, np_ = round_up(m, tm), round_up(n, tn)
        check_int32("sgemm", groups * mp * k, groups * np_ * k)
        ap = None
        if a is not None:
            panels_a = mp // self.params["MR"]
            ap = self.scratch.get("ap", 4 * groups * mp * k)
            prog.launch("pack_a", (k, panels_a, groups), i32(m), i32(k), a.buffer,
                        i32(a.rows), i32(a.cols), i32(a.batch), ap, i32(panels_a),
                        i32(mp * k))
        if b_packed:
            return ap, b.buffer, b.batch
        layout = (n, k, b.rows, b.cols, b.batch, groups, np_)  # (Bp[np_ / 16][k][16])
        if b.panels is not None and layout in b.panels:
            return ap, b.panels[layout], np_ * k  # a constant weight's, packed before
        nbytes = 4 * groups * np_ * k
        if b.panels is not None and packed_weights.reserve(max(nbytes, 64)):
            try:
                bp = b.panels[layout] = device_buffer(self.device, nbytes, "weight panels")
            except Exception:  # not allocated: not held (else the cap shrinks for good)
                packed_weights.reserve(-max(nbytes, 64))
                raise
        else:
            bp = self.scratch.get("bp", nbytes)
        prog.launch("pack_b", (-(-k // PACK_K), np_ // 16, groups), i32(n), i32(k), b.buffer,
                    i32(b.rows), i32(b.cols), i32(b.batch), bp, i32(np_ // 16), i32(np_ * k))
        return ap, bp, np_ * k

    def sgemm_out(self, m: int, n: int, k: int, a: Operand, b: Operand, out: OutputMap,
                  groups: int = 1, b_packed: bool = False) -> None:
        """The packed C[g] = op(A)[g] @ op(B)[g] written through ``out`` with its fused
        epilogue (``sgemm_packed_out``): no padded C, no second pass over the result, and
        A read in place (no pack_a)."""
        prog = self.sgemm_program()
        _, bp, bp_batch = self._pack(prog, m, n, k, None, b, groups, b_packed)
        mblk, nblk, rows, cols = self.out_blocks(m, n, groups)
        bias_buf, brs, bcs, bgs = out.bias if out.bias is not None else (out.buffer, 0, 0, 0)
        res = out.residual
        prog.launch("sgemm_packed_out", (rows, cols, groups), i32(m), i32(n), i32(k),
                    a.buffer, i32(a.rows), i32(a.cols), i32(a.batch), bp, i32(bp_batch),
                    i32(rows), i32(cols), out.buffer, i32(out.pixels),
                    i32(out.image), i32(out.row), i32(out.group), bias_buf,
                    i32(out.bias is not None), i32(brs), i32(bcs), i32(bgs),
                    res if res is not None else out.buffer, i32(res is not None),
                    i32(out.relu), i32(mblk), i32(nblk))

    def out_blocks(self, m: int, n: int, batch: int) -> tuple[int, int, int, int]:
        """(mblk, nblk, row blocks, column blocks) of an m x n launch of the packed
        out-kernels (``blocking``; the tuned MBLK x NBLK as they are when ``fit_blocks``
        is 0)."""
        p = self.params
        mblk, nblk = p["MBLK"], p["NBLK"]
        if self.fit_blocks:
            mblk, nblk = blocking.blocks(m, n, batch, p["MR"], mblk, nblk,
                                         self.fit_blocks * self.device.compute_units)
        return (mblk, nblk, *blocking.grid(m, n, p["MR"], mblk, nblk))

    def gemm(self, m: int, n: int, k: int, a: Operand, b: Operand, out: Any,
             bias: tuple[Any, int, int] | None, act: int = 0) -> None:
        """out (m x n, contiguous) = act(op(A) @ op(B) (+ bias)) (``small_gemm.gemm`` sends
        small and skinny products to one launch first; ``act``: activation.cl's code, the
        packed engine's epilogue only: ``small_gemm.gemm`` gives the tiled one none)."""
        if self.kernel == "sgemm_tiled":
            self.sgemm(m, n, k, a, b, out, n, bias=bias)
            return
        check_int32("gemm", m * n)
        self.sgemm_out(m, n, k, a, b, OutputMap(out, n, 0, n, 0, None if bias is None
                                                else (*bias, 0), None, act))

    def conv2d(self, p: Any, x: Any, w: Any, out: Any, bias: Any, residual: Any,
               relu: int) -> None:
        """NCHW conv as im2col + one grouped GEMM with the fused epilogue (bias, residual,
        ``relu``: activation.cl's code; col2output's on the tiled engine)."""
        conv = self.conv_program()
        kg, cg = p.k // p.groups, p.c // p.groups
        crs, ohw = cg * p.r * p.s, p.out_h * p.out_w
        nohw = p.n * ohw
        packed = self.kernel == "sgemm_packed"
        if packed:
            tm, tn = self.packed_tile()
            mp, ld = round_up(kg, tm), round_up(nohw, tn)
        else:
            mp, ld = kg, nohw
        check_int32("conv2d", p.groups * crs * ld, p.groups * mp * ld, p.n * p.c * p.h * p.w,
                    p.n * p.k * ohw)
        cols = self.scratch.get("cols", 4 * p.groups * crs * ld)
        (sh, sw), (dh, dw) = p.stride, p.dilation
        geometry = (x, i32(p.c), i32(p.h), i32(p.w), i32(cg), i32(p.r), i32(p.s),
                    i32(p.out_h), i32(p.out_w), i32(nohw), i32(sh), i32(sw),
                    i32(p.padding[0]), i32(p.padding[1]), i32(dh), i32(dw), cols)
        if packed:
            xp, hp, wp = padded_input(conv, self.scratch, p, x)
            oh, ow = p.out_h, p.out_w
            if p.r == p.s == 1 and (sh, sw) == (1, 1) and (hp, wp) == (oh, ow):
                oh, ow = hp, wp = 1, oh * ow  # planes are contiguous: one row per image
            conv.launch("im2col_rows", (p.n * oh + 1, crs, p.groups), xp, i32(p.c), i32(hp),
                        i32(wp), i32(cg), i32(p.r), i32(p.s), i32(oh), i32(ow), i32(nohw),
                        i32(sh), i32(sw), i32(dh), i32(dw), cols, i32(ld // 16),
                        i32(crs * ld), i32(crs))
        else:
            conv.launch("im2col", (ld, crs, p.groups), *geometry, i32(ld), i32(crs * ld),
                        i32(0), i32(crs))
        if packed:
            self.sgemm_out(kg, nohw, crs, Operand(w, crs, 1, kg * crs),
                           Operand(cols, ld, 1, crs * ld), OutputMap(
                               out, ohw, p.k * ohw, ohw, kg * ohw,
                               None if bias is None else (bias, 1, 0, kg), residual, relu),
                           groups=p.groups, b_packed=True)
            return
        acc = self.scratch.get("c", 4 * p.groups * mp * ld)
        self.sgemm(kg, nohw, crs, Operand(w, crs, 1, kg * crs), Operand(cols, ld, 1, crs * ld),
                   acc, ld, groups=p.groups, c_batch=mp * ld, b_packed=packed)
        launch_col2output(conv, self.epilogue_run, p, acc, ld, mp * ld, out, bias, residual,
                          relu)
