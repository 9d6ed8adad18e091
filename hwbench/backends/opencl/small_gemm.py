"""Small and skinny float32 GEMMs in one launch (``kernels/opencl/gemm_small.cl``).

The packed engine (``gemm.Gemm``) packs A and B, multiplies, then copies a padded
result out: four launches and two copies of the operands. Below ``SMALL_MACS`` the
launches cost more than the arithmetic (on PoCL, busy: an 8x8x8 product 0.72 -> 0.09 ms
in one launch). With at most ``SKINNY_ROWS`` rows and both operands contiguous along k
(a batch-1 classifier: ONNX Gemm with transB) packing B costs more than the product
itself, dot products that read each weight once: 1x9216x4096 96-128 -> 36-57 ms,
1x2048x1000 1.9-8 -> 0.7-3 ms (busy, best of 8); then eight weight rows streamed at once
per work-item (``DOT_COLS``) and vec8.cl's loads: 1x9216x4096 51 -> 6-10 ms, 1x4096x1000
2.1 -> 0.55-0.6 ms (busy, one PoCL thread, device time; MKL: 6 and 0.75-0.9 ms CPU). With
B not transposed the packed engine measured faster above ``SMALL_MACS``. Up to
``SKINNY_ROWS`` rows (a batch-8 or -16 classifier) the dot kernel, ``DOT_ROWS`` rows per
work-item, still beats packing B each call (two PoCL threads, busy, best of 6):
8x4096x9216 37 -> 9 ms, 8x4096x4096 17 -> 4.7 ms, 8x1000x2048 1.9 -> 0.6 ms,
16x4096x9216 139 -> 66 ms; at 32x4096x4096 the two tie (47 ms).
"""

from __future__ import annotations

from typing import Any

from hwbench.backends.opencl.compiler import kernel_source
from hwbench.backends.opencl.gemm import LOCAL, Operand, check_int32, i32, vec8_defines

SMALL_MACS = 2**17  # m*n*k below this: one launch, no packing
SKINNY_ROWS = 16    # m up to this, both operands contiguous along k: the dot kernel
DOT_ROWS = 8        # its rows per work-item (each weight row read from memory m / 8 times)
ROWS_SMALL = 4      # rows per work-item otherwise
DOT_COLS = 8        # columns per work-item of gemm_small_dot (its DOT_COLS)
PACKED_MIN_ROWS = 8  # m from which a small product with packed weights runs packed


def rows_per_item(m: int, n: int, k: int, dot: bool) -> int | None:
    """ROWS for ``gemm_small`` (``dot``: both operands contiguous along k), or None
    where the packed engine serves better."""
    if dot and m <= SKINNY_ROWS:
        return min(m, DOT_ROWS)
    if m * n * k < SMALL_MACS:
        return min(m, ROWS_SMALL)
    return None


def is_dot(a: Any, b: Any, k: int) -> bool:
    """A's rows and B's columns both contiguous along k (and k long enough to slice)."""
    return a.cols == 1 and b.rows == 1 and k >= 8


def gemm_small(engine: Any, rows: int, m: int, n: int, k: int, a: Any, b: Any, out: Any,
               bias: tuple[Any, int, int] | None, act: int = 0) -> None:
    """out (m x n, contiguous) = act(op(A) @ op(B) (+ bias)) for ``gemm.Operand`` a and b
    (``act``: activation.cl's code, 0 none)."""
    check_int32("gemm", m * k, k * n, m * n)
    work = max(1, -(-n // 8))
    local = min(LOCAL, 16)
    program = engine.compiler.program(
        "gemm_small", {"ROWS": rows, "ACT": act, **vec8_defines(engine.device)},
        {"gemm_small": (local, 1), "gemm_small_dot": (1, 1)},
        source="\n".join(kernel_source(name) for name in ("vec8", "activation",
                                                          "gemm_small")))
    bias_buf, brs, bcs = bias if bias is not None else (out, 0, 0)
    if is_dot(a, b, k):
        program.launch("gemm_small_dot", (-(-n // DOT_COLS), -(-m // rows)), i32(m), i32(n), i32(k),
                       a.buffer, i32(a.rows), b.buffer, i32(b.cols), out, bias_buf,
                       i32(bias is not None), i32(brs), i32(bcs))
        return
    program.launch("gemm_small", (work, -(-m // rows)), i32(m), i32(n), i32(k), a.buffer,
                   i32(a.rows), i32(a.cols), b.buffer, i32(b.rows), i32(b.cols), out,
                   bias_buf, i32(bias is not None), i32(brs), i32(bcs))


def gemm(engine: Any, m: int, n: int, k: int, a: Any, b: Any, out: Any,
         bias: tuple[Any, int, int] | None, act: int = 0) -> bool:
    """``engine.gemm``, small and skinny products on the packed (CPU) engine in one
    ``gemm_small`` launch; ``act`` (activation.cl's code) applied as the result is
    stored on the packed engine. False where the caller must apply it (the tiled one)."""
    if engine.kernel == "sgemm_packed":
        dot = is_dot(a, b, k)
        rows = rows_per_item(m, n, k, dot)
        if rows is not None and not (dot is False and m >= PACKED_MIN_ROWS
                                     and weights_packed(b)):
            gemm_small(engine, rows, m, n, k, a, b, out, bias, act)
        else:
            engine.gemm(m, n, k, a, b, out, bias, act)
        return True
    engine.gemm(m, n, k, a, b, out, bias)
    return act == 0


def weights_packed(b: Any) -> bool:
    """B a constant weight whose panels the packed engine keeps (packed on first use):
    a small product is then one ``sgemm_packed_out`` launch reading A in place, which
    beat ``gemm_small`` on PoCL ``basic`` (kernel time, batch 8): LeNet's 8x120x84 22 ->
    6.7 µs, mlp's 8x64x64 7-8 -> 1.7-3.1 µs; from ``PACKED_MIN_ROWS`` rows (batch 1
    ran 0-8 % slower so: the tile's other rows wasted). The dot kernel's skinny products
    (B transposed) are left to it: measured against packing B each call only."""
    return b.panels is not None


def is_pixel_conv(p: Any, residual: Any, act: int) -> bool:
    """A 1x1 conv of 1x1 images without groups, padding or residual (a
    squeeze-and-excitation block's): a plain GEMM, (n x c) @ (k x c)^T; with an
    activation (``act``, activation.cl's code) only where one ``gemm_small`` launch
    serves it (which applies it as it stores)."""
    if not (p.r == p.s == 1 and p.h == p.w == 1 and p.groups == 1
            and not any(p.padding) and residual is None):
        return False
    return act == 0 or rows_per_item(p.n, p.k, p.c, p.c >= 8) is not None


def pixel_conv(engine: Any, p: Any, x: Any, w: Any, out: Any, bias: Any, act: int = 0) -> None:
    """``is_pixel_conv``'s conv through ``gemm``: one small or dot launch instead of
    im2col, the packed product and col2output. With the activation, against that conv
    path (device time, two PoCL threads, busy, median of 15): 8x1152 -> 48 + SiLU 0.26 ->
    0.09 ms, 8x48 -> 1152 + Sigmoid 0.26 -> 0.20, 1x672 -> 28 + SiLU 0.16 -> 0.10."""
    a, b = Operand(x, p.c, 1), Operand(w, 1, p.c)
    bias_arg = None if bias is None else (bias, 0, 1)
    if act:
        gemm_small(engine, rows_per_item(p.n, p.k, p.c, is_dot(a, b, p.c)), p.n, p.k, p.c,
                   a, b, out, bias_arg, act)
        return
    gemm(engine, p.n, p.k, p.c, a, b, out, bias_arg)
