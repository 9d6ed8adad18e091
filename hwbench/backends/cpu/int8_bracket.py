"""The exact mode's QLinearConv codes from oneDNN's fused int8 convolution (issue 16).

The exact code is ``sat(rne(V) + zy)`` with ``V = (acc + bias)·s`` the exact rational
value (``quantization.requantize``). oneDNN's int8 convolution with the scales and a
float32 bias fused (the ``float32-requant`` mode's ``QConv``, here with a float32 dst)
writes ``y``, ``V`` to within a written bound ``E`` (below). One oneDNN binary pass
then rounds ``y + zy − Δ`` and another ``y + zy + Δ`` to codes (``Δ > E``, each pass's
own float32 add counted in ``E``): the two values bracket ``V + zy`` strictly, and
rounding with saturation is monotonic, so wherever the two codes agree no tie lies
between them and that code IS the exact one. Only the positions where they differ
(~1e-4 of the codes) are recomputed exactly: there ``|y − V| < Δ``, so where ``Δ`` is
below half the scale ``acc + bias = rint(y / s)`` (elsewhere the patch · filter dot
product in NumPy), then the shared integer requantization.

The error bound (``u = 2**-24``; per output channel k, a = |acc·s|, B = |bias·s|).
Where ``V + zy`` lies within one code of the output range, ``|V| <= 257`` and
``a <= 257 + B``. oneDNN's steps each round once: the accumulator (and its zero-point
compensation) to float32, exact unless a term reaches ``2**24`` (each is at most
``M = 256·max(Σw⁺, Σ|w⁻|)``; where ``2·M >= 2**24``, at most ``u·(2·M·s + a)``; a u8 src
without zero point has the accumulator alone, ``|acc| <= a/s``), the
product by the scale (``u·a``), the bias add and the output zero point add (``u·258``
each), and the float32 bias and scale themselves (``u·B``; ``σ·(a + B)`` where the
float32 scale is not the exact one). ``Δ`` is 1.5x that sum. Farther outside the range,
the exact and both computed codes saturate alike (the error is then a tiny fraction of
``a``; a layer where ``u·M·s`` could reach 1/64 is not taken). Taken only on VNNI/AMX
implementations (their int32 accumulation is exact; older x86 int8 kernels saturate
int16 pairs) and where ``acc + bias`` provably fits int32; elsewhere the caller's path
runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.binary import build_binary_to
from hwbench.backends.cpu.bound_primitive import BoundPrimitive
from hwbench.backends.cpu.float32_requant import (
    as_int8,
    fused_or_none,
    quantization_args,
    symmetric_zero_point,
)
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.backends.cpu.onednn import (
    ARG_ATTR_ZERO_POINTS,
    ARG_BIAS,
    ARG_DST,
    ARG_SRC,
    ARG_SRC_1,
    ARG_WEIGHTS,
)
from hwbench.backends.cpu.primitives import QConv
from hwbench.kernels import spec
from hwbench.kernels.quantization import (
    FixedPointMultiplier,
    _requantize_integer,
    float32_bias,
    float32_scale,
)

ENABLED = True  # False: the exact mode's int32 path everywhere (A/B runs, tests)
U = 2.0 ** -24  # float32's unit roundoff
INT32_MAX = 2 ** 31 - 1
EXACT_INTEGERS = 2 ** 24


@dataclasses.dataclass(frozen=True)
class Bracket:
    """One layer's bound conv and rounding passes, and what the exact fix-up needs."""

    conv: Any  # run(src address, y address): the fused conv, float32 y
    lo: Any  # run(y address, codes address): rne(y + zy − Δ), saturated
    hi: Any  # the same pass with + Δ
    taps: np.ndarray  # int32 (K, R·S·C/g): the filters less their zero point, im2row order
    multiplier: np.ndarray  # int64 (K,)
    right_shift: np.ndarray  # int64 (K,)
    bias: np.ndarray | None  # int64 (K,)
    delta: np.ndarray  # float64 (K,): Δ
    scale: np.ndarray  # float64 (K,): the exact scale s
    bias_out: np.ndarray  # float64 (K,): |bias·s| (B)
    conversion: np.ndarray  # float64 (K,): the accumulator conversion's error bound
    sigma: np.ndarray  # float64 (K,): |s32 − s| / s
    y_suffices: bool = False  # ``from_y`` holds for every filter at any |y| <= 512
    x_dtype: np.dtype = np.dtype(np.uint8)


def error_bound(w8: np.ndarray, scale32: np.ndarray, exact_scale: np.ndarray,
                bias_out: np.ndarray, plain: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """Per filter, ``Δ`` (1.5x a bound on |computed − (V + zy)| of the fused conv and a
    rounding pass wherever the exact value is within one code of the output range:
    module docstring) and the accumulator conversion's part of that bound; None where a
    layer is outside what the argument covers. ``plain``: a u8 src without zero point,
    so oneDNN converts the accumulator alone (``|acc| <= (257 + B)/s`` there)."""
    flat = w8.reshape(w8.shape[0], -1).astype(np.int64)
    # |Σ x·w| and |zx·Σw| (any subset's, for padding): x and zx within 256 after
    # oneDNN's +128 shift of int8 src, so each at most 256·max(Σw⁺, Σ|w⁻|)
    terms = 256.0 * np.maximum(np.where(flat > 0, flat, 0).sum(axis=1),
                               np.where(flat < 0, -flat, 0).sum(axis=1))
    if np.any(U * terms * exact_scale > 1 / 64):
        return None
    sigma = np.abs(scale32.astype(np.float64) - exact_scale) / exact_scale
    b = np.abs(bias_out)
    a = 257.0 + b
    if plain:  # float32 holds |acc| exactly below 2**24
        conversion = np.where(a / exact_scale >= EXACT_INTEGERS, U * a, 0.0)
    else:  # two such terms summed: float32 exact while 2·terms < 2**24
        conversion = np.where(2 * terms >= EXACT_INTEGERS, U * (2 * terms * exact_scale + a),
                              0.0)
    err = conversion + U * (a + 2 * 258 + b) + sigma * (a + b)
    return 1.5 * err + 2.0 ** -30, conversion


def from_y(br: Bracket, y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Where ``acc + bias = rint(y / s)`` is exact at values ``y`` (float64) of filters
    ``k``: the conv's error at ``|y|`` (its terms as in ``error_bound``, 1.5x) below half
    of ``s``."""
    ay, b = np.abs(y), br.bias_out[k]
    err = br.conversion[k] + U * (2 * ay + 2 * b + 4) + br.sigma[k] * (ay + 2 * b + 2)
    return 1.5 * err + 2.0 ** -30 < br.scale[k] * (0.5 - 2.0 ** -20)


def build_bracket(be: Any, conv: QConv, p: spec.Int8ConvProblem, w: np.ndarray,
                  packed: np.ndarray, zx: int, bias: np.ndarray | None,
                  fixed: FixedPointMultiplier, zy: np.ndarray) -> Bracket | None:
    """The bound runs of ``conv`` (float32 dst, built with a bias) and of the two rounding
    passes for these weights and parameters, or None where the bracket's argument does
    not cover them."""
    w8 = as_int8(w)
    k = p.k
    exact_scale = np.ascontiguousarray(np.broadcast_to(fixed.real_scale, (k,)), np.float64)
    scale32 = np.ascontiguousarray(np.broadcast_to(float32_scale(fixed), (k,)))
    bias64 = None if bias is None else np.asarray(bias, np.int64).reshape(k)
    wsum = np.abs(w8.reshape(k, -1).astype(np.int64)).sum(axis=1)
    if np.any(256 * wsum + (0 if bias64 is None else np.abs(bias64)) >= INT32_MAX):
        return None  # acc + bias might leave int32 (the exact path saturates there)
    b32 = np.zeros(k, np.float32) if bias64 is None else float32_bias(bias64, scale32)
    bias_out = np.zeros(k) if bias64 is None else np.abs(bias64 * exact_scale)
    b_out = np.maximum(bias_out, np.abs(b32))
    plain = zx == 0 and np.dtype(p.x_dtype) == np.uint8
    bound = error_bound(w8, scale32, exact_scale, b_out, plain)
    if bound is None:
        return None
    delta, conversion = bound
    shifts = []
    for sign in (-1.0, 1.0):  # zy ∓ Δ in float32, rounded outwards: at least Δ away
        want = float(zy) + sign * delta
        got = want.astype(np.float32)
        wrong = got.astype(np.float64) * sign < want * sign
        shifts.append(np.where(wrong, np.nextafter(got, np.float32(sign * np.inf)), got)
                      .reshape(1, k))
    args = quantization_args(scale32, zx, 0)
    del args[ARG_ATTR_ZERO_POINTS | ARG_DST]  # the conv has no dst zero point
    if zx == 0:
        del args[ARG_ATTR_ZERO_POINTS | ARG_SRC]
    run = BoundPrimitive(conv.prim, {ARG_WEIGHTS: packed, ARG_BIAS: b32, **args},
                         (ARG_SRC, ARG_DST)).runner()
    pixels = p.n * p.out_h * p.out_w
    dtype = "u8" if zy.dtype == np.uint8 else "s8"
    rounding = be._primitive(("bracket-round", pixels, k, dtype), lambda: build_binary_to(
        be.dnnl, "binary_add", (pixels, k), (1, k), dtype))
    lo, hi = (BoundPrimitive(rounding, {ARG_SRC_1: t}, (ARG_SRC, ARG_DST)).runner()
              for t in shifts)
    taps = w8.astype(np.int32).reshape(k, p.c // p.groups, p.r, p.s).transpose(0, 2, 3, 1)
    br = Bracket(run, lo, hi, np.ascontiguousarray(taps).reshape(k, -1),
                 np.broadcast_to(fixed.multiplier, (k,)).astype(np.int64),
                 np.broadcast_to(fixed.right_shift, (k,)).astype(np.int64), bias64, delta,
                 exact_scale, b_out, conversion,
                 np.abs(scale32.astype(np.float64) - exact_scale) / exact_scale)
    every = from_y(br, np.full(k, 512.0), np.arange(k)).all()
    return dataclasses.replace(br, y_suffices=bool(every), x_dtype=np.dtype(p.x_dtype))


def differing(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Flat indices where two same-shape code arrays differ, compared 8 bytes at a time
    (the differences are rare)."""
    a, b = lo.reshape(-1), hi.reshape(-1)
    words = a.size // 8
    found = np.flatnonzero(a[:words * 8].view(np.uint64) != b[:words * 8].view(np.uint64))
    if words * 8 == a.size:
        if not found.size:
            return found
        idx = (found[:, None] * 8 + np.arange(8)).reshape(-1)
    else:
        idx = np.concatenate(((found[:, None] * 8 + np.arange(8)).reshape(-1),
                              np.arange(words * 8, a.size)))
    return idx[a[idx] != b[idx]]


def exact_codes(br: Bracket, p: spec.Int8ConvProblem, src: np.ndarray, y: np.ndarray,
                zx: int, zy: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """The exact codes at flat NHWC output positions ``flat`` (where the rounding passes
    disagreed: within one code of the output range). Where the conv's error bound at
    ``|y|`` is below ``s/2`` (``from_y``), ``acc + bias`` is the one integer that close
    to ``y / s``: ``rint`` of it, no patch read. Elsewhere each position's patch ·
    filter dot product (``patch_sums``). Then the shared integer-only requantization
    (``acc + bias`` fits int32: ``build_bracket`` checks)."""
    k = flat % p.k
    values = y.reshape(-1)[flat].astype(np.float64)
    total = np.rint(values / br.scale[k]).astype(np.int64)
    if not br.y_suffices:
        slow = np.flatnonzero(~from_y(br, values, k))
        if slow.size:
            total[slow] = patch_sums(br, p, src, zx, flat[slow])
    if len(flat) > FEW:
        fixed = FixedPointMultiplier(br.multiplier[k], br.right_shift[k])
        return _requantize_integer(total, fixed, zy.item(), zy.dtype)
    info = np.iinfo(zy.dtype)
    return np.array(requantize_few(total.tolist(), br.multiplier[k].tolist(),
                                   br.right_shift[k].tolist(), int(zy), info.min, info.max),
                    zy.dtype)


FEW = 64  # up to this many codes, ``requantize_few`` (Python ints) is the faster form


def requantize_few(totals: list[int], multipliers: list[int], shifts: list[int], zy: int,
                   low: int, high: int) -> list[int]:
    """``_requantize_integer`` (round half to even of ``t·m / 2**shift``, plus ``zy``,
    saturated) on a handful of values in Python ints: ~8 against ~30 µs for NumPy's
    dozen small-array calls, which the fix-up would pay once per layer."""
    out = []
    for t, m, sh in zip(totals, multipliers, shifts, strict=True):
        q, r = divmod(t * m, 1 << sh)  # floor, 0 <= r < 2**sh: as ``>>``
        half = 1 << (sh - 1)
        q += r > half or (r == half and q & 1)
        out.append(min(max(q + zy, low), high))
    return out


def patch_sums(br: Bracket, p: spec.Int8ConvProblem, src: np.ndarray, zx: int,
               flat: np.ndarray) -> np.ndarray:
    """``acc + bias`` at flat NHWC output positions, exactly: each one's patch · filter
    dot product in int32 (every partial sum is below ``256·Σ|w| < 2**31``); padding taps
    are the zero point, they add 0."""
    k = flat % p.k
    pix = flat // p.k
    ow, oh, n = pix % p.out_w, (pix // p.out_w) % p.out_h, pix // (p.out_w * p.out_h)
    per = p.c // p.groups
    first = (k // (p.k // p.groups)) * per
    rows = oh[:, None] * p.stride[0] - p.padding[0] + np.arange(p.r) * p.dilation[0]
    cols = ow[:, None] * p.stride[1] - p.padding[1] + np.arange(p.s) * p.dilation[1]
    inside = ((rows >= 0) & (rows < p.h))[:, :, None] & ((cols >= 0) & (cols < p.w))[:, None, :]
    # one flat offset per tap into the NHWC codes (clipped: masked out below)
    base = ((n[:, None, None] * p.h + np.clip(rows, 0, p.h - 1)[:, :, None]) * p.w
            + np.clip(cols, 0, p.w - 1)[:, None, :]) * p.c + first[:, None, None]
    offsets = (base[..., None] + np.arange(per)).reshape(len(flat), -1)
    patch = np.take(src.reshape(-1), offsets).astype(np.int32)
    patch -= zx
    if not inside.all():
        patch *= np.repeat(inside.reshape(len(flat), -1), per, axis=1)
    acc = np.einsum("dt,dt->d", patch, br.taps[k]).astype(np.int64)
    return acc if br.bias is None else acc + br.bias[k]


def qconv2d_bracket(be: Any, p: spec.Int8ConvProblem, x, w: np.ndarray, zx, zw, bias,
                    fixed: FixedPointMultiplier, zy: np.ndarray) -> np.ndarray | None:
    """QLinearConv's exact codes as NHWC (n, oh, ow, k), or None where the bracket does
    not apply (the caller's exact path runs)."""
    if not ENABLED:
        return None
    # A graph's layer passes the same objects every run (its frozen weights and bias,
    # and the remembered checks' problem, zero points and multiplier): its Bracket is
    # found by identity, where the keyed look-ups below cost ~70 µs a call.
    memo = be._primitive(("bracket-memo",), dict)
    args = (w, p, zx, zw, bias, fixed, zy)
    seen = memo.get(id(w))
    if seen is not None and _same(seen[0], args):
        br = seen[1]
    else:
        br = _bracket(be, p, w, zx, zw, bias, fixed, zy)
        if w in be.frozen and (bias is None or bias in be.frozen):
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[id(w)] = (args, br)  # holds the objects: their ids stay theirs
    if br is None:
        return None
    x_dtype = br.x_dtype
    if isinstance(x, ChannelsLastArray) and x.nhwc.flags.c_contiguous:
        src = x.nhwc
    else:
        src = be._buffers.empty((p.n, p.h, p.w, p.c), x_dtype)
        np.copyto(src, x.nhwc if isinstance(x, ChannelsLastArray)
                  else np.asarray(be._plain(x)).transpose(0, 2, 3, 1))
    shape = (p.n, p.out_h, p.out_w, p.k)
    y = be._buffers.empty(shape, np.float32)
    out, other = be._buffers.empty(shape, zy.dtype), be._buffers.empty(shape, zy.dtype)
    be.dnnl.set_num_threads(be._threads_now)
    a_y = address(y)
    br.conv(address(src), a_y)
    br.lo(a_y, address(out))
    br.hi(a_y, address(other))
    flat = differing(out, other)
    if flat.size:
        out.reshape(-1)[flat] = exact_codes(br, p, src, y, int(zx), zy, flat)
    return out


MEMO_SIZE = 4096  # layers remembered by identity per backend (then forgotten at once)


def _same(a: tuple, b: tuple) -> bool:
    """Whether two 7-tuples hold the same objects (unrolled: a generator cost ~10 µs)."""
    return a[0] is b[0] and a[1] is b[1] and a[2] is b[2] and a[3] is b[3] \
        and a[4] is b[4] and a[5] is b[5] and a[6] is b[6]


def _bracket(be: Any, p: spec.Int8ConvProblem, w: np.ndarray, zx, zw, bias,
             fixed: FixedPointMultiplier, zy: np.ndarray) -> Bracket | None:
    """The layer's Bracket from the primitive cache and ``w``'s derived arrays, or None
    where it does not apply."""
    if np.ndim(zx) != 0 or symmetric_zero_point(w.dtype, zw) is None:
        return None
    x_dtype = np.dtype(p.x_dtype)
    pb = dataclasses.replace(p, has_bias=True)  # a layer without one: b32 = 0
    key = ("qconv-bracket", pb, x_dtype.str, int(zx) != 0)
    conv = be._primitive(key, lambda: _vnni_or_none(fused_or_none(lambda: QConv(
        be.dnnl, pb, x_dtype, np.dtype(np.float32), (int(zx) != 0, False)))))
    if conv is None:
        return None
    values = (fixed.multiplier.tobytes(), fixed.right_shift.tobytes(), int(zx), int(zy),
              zy.dtype.str, None if bias is None else np.asarray(bias).tobytes(),
              be._threads_now)
    packed = be._once_per_array(w, key, lambda w: conv.pack_weights(as_int8(w)))
    br = be._once_per_array(w, (key, "bracket", values), lambda w: build_bracket(
        be, conv, p, w, packed, int(zx), None if bias is None else be._plain(bias), fixed,
        zy))
    return br


def _vnni_or_none(conv: QConv | None) -> QConv | None:
    """``conv`` where its implementation accumulates int8 products exactly in int32
    (VNNI, AMX); None for older x86 kernels, whose int16 pair sums saturate."""
    if conv is None:
        return None
    impl = str(conv.impl).lower()
    return conv if ("vnni" in impl or "amx" in impl) else None
