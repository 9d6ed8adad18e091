"""The oneDNN primitives the cpu backend runs, each built once per problem and cached.

Every builder takes the loaded library (``onednn.OneDNN``) and a validated problem and
returns a ``Primitive`` (or a small class holding one with the reorders around it); the
backend only swaps data pointers per call.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.buffer_pool import aligned_empty
from hwbench.backends.cpu.layouts import BLOCKED_TAG, conv_tags
from hwbench.backends.cpu.onednn import (
    ARG_ATTR_SCALES,
    ARG_ATTR_ZERO_POINTS,
    ARG_BIAS,
    ARG_DIFF_DST,
    ARG_DIFF_SRC,
    ARG_DST,
    ARG_MULTIPLE_SRC,
    ARG_SRC,
    ARG_SRC_1,
    ARG_WEIGHTS,
    QUERY_DIFF_SRC_MD,
    QUERY_DST_MD,
    QUERY_SRC_MD,
    QUERY_WEIGHTS_MD,
    Primitive,
)
from hwbench.kernels import spec

# spec.ACTIVATIONS -> oneDNN eltwise (algorithm, alpha, beta), as a post-op or alone
ONEDNN_ACTIVATIONS: dict[str, tuple[str, float, float]] = {
    "relu": ("eltwise_relu", 0.0, 0.0),
    "relu6": ("eltwise_clip_v2", 0.0, 6.0),
    "sigmoid": ("eltwise_logistic", 0.0, 0.0),
    "silu": ("eltwise_swish", 1.0, 0.0),  # x · sigmoid(alpha·x)
    "hardswish": ("eltwise_hardswish", 1.0 / 6.0, 0.5),
    "hardsigmoid": ("eltwise_hardsigmoid", 1.0 / 6.0, 0.5),
    "tanh": ("eltwise_tanh", 0.0, 0.0),
    "gelu": ("eltwise_gelu_erf", 0.0, 0.0),  # the algorithms of cpu's Gelu kernel
    "gelu_tanh": ("eltwise_gelu_tanh", 0.0, 0.0),
    "elu": ("eltwise_elu", 1.0, 0.0),  # alpha·(eˣ − 1) below 0
}


class Conv:
    """A convolution primitive plus the reorders between NCHW/OIHW and its chosen layouts."""

    def __init__(self, d: onednn.OneDNN, p: spec.ConvProblem, layout: str,
                 residual: str | None = None, activation: str | None = None,
                 dst_like: Conv | None = None) -> None:
        """``residual``: None, "plain" (summed into a dst pre-filled with it) or "blocked"
        (a binary-add post-op reading it in the dst's own blocked layout); ``dst_like``:
        a conv whose dst layout this one writes (the one oneDNN chose for its "any")."""
        self.problem = p
        self._dst_like = dst_like  # keeps the primitive that owns its dst descriptor
        self.residual = residual
        g = p.groups
        wshape = (p.k, p.c, p.r, p.s) if g == 1 else (g, p.k // g, p.c // g, p.r, p.s)
        user_src = d.memory_desc((p.n, p.c, p.h, p.w), "f32", tag="abcd")
        user_wei = d.memory_desc(wshape, "f32")
        user_dst = d.memory_desc(p.output_shape, "f32", tag="abcd")
        src_tag, dst_tag = conv_tags(p, layout)
        src = d.memory_desc((p.n, p.c, p.h, p.w), "f32", tag=src_tag)
        wei = d.memory_desc(wshape, "f32", tag="any")
        dst = d.memory_desc(p.output_shape, "f32", tag=dst_tag) if dst_like is None \
            else dst_like.prim.mds[ARG_DST]
        bias = d.memory_desc((p.k,), "f32", tag="a") if p.has_bias else None
        pt, pl, pb, pr = p.padding
        dil = (p.dilation[0] - 1, p.dilation[1] - 1)  # oneDNN counts dilation from 0
        post_ops: list[tuple] = []
        if residual == "plain":
            post_ops.append(("sum",))
        elif residual == "blocked":
            post_ops.append(("binary", "binary_add", dst))
        if activation is not None:
            post_ops.append(("eltwise", *ONEDNN_ACTIVATIONS[activation]))
        attr = d.attr(post_ops=post_ops)
        pd = d.create_pd(
            "dnnl_convolution_forward_primitive_desc_create", d.engine,
            d.prop["forward_inference"], d.alg["convolution_direct"], src.handle, wei.handle,
            bias.handle if bias else None, dst.handle, onednn.Dims(*p.stride),
            onednn.Dims(*dil), onednn.Dims(pt, pl), onednn.Dims(pb, pr), attr.handle)
        args: dict[int, Any] = {ARG_SRC: QUERY_SRC_MD, ARG_WEIGHTS: QUERY_WEIGHTS_MD,
                                ARG_DST: QUERY_DST_MD}
        if bias:
            args[ARG_BIAS] = bias
        # The layout a shortcut read in place must have (None: no such post-op).
        self.residual_md = dst if residual == "blocked" else None
        if residual == "blocked":
            args[onednn.arg_post_op(0)] = dst
        self.prim = Primitive(d, pd, args)
        self.src_reorder = reorder(d, user_src, self.prim.mds[ARG_SRC])
        self.wei_reorder = reorder(d, user_wei, self.prim.mds[ARG_WEIGHTS])
        self.dst_reorder = reorder(d, self.prim.mds[ARG_DST], user_dst)
        self.residual_reorder = (reorder(d, user_dst, self.prim.mds[ARG_DST])
                                 if residual == "plain" else None)
        self.impl = self.prim.impl
        self._reorders_from: list[tuple[onednn.MemoryDesc, Primitive]] = []

    def reorder_from(self, d: onednn.OneDNN, md: onednn.MemoryDesc) -> Primitive:
        """A reorder from ``md`` (another primitive's blocked output) straight to this
        convolution's src layout, built once per layout met (a handful at most)."""
        for known, prim in self._reorders_from:
            if known == md:
                return prim
        prim = reorder(d, md, self.prim.mds[ARG_SRC])
        self._reorders_from = [*self._reorders_from[-3:], (md, prim)]
        return prim


class QConv:
    """oneDNN's int8 convolution with requantization fused: u8/s8 NHWC src with a zero
    point, s8 weights with one float32 scale per filter (the whole requantization scale),
    f32 bias in output units, u8/s8 NHWC dst with a zero point. ``zero_points``: whether
    src and dst take one; without, their compensation is not computed (a src after a
    ReLU has zero point 0: ResNet-18's 3x3 convs ran 5-25 % faster without it).
    ``post_ops``: ``OneDNN.attr``'s, applied before the dst zero point (a binary one's
    operand is ``arg_post_op(its index)``: ``int8_conv_add``'s residual)."""

    def __init__(self, d: onednn.OneDNN, p: spec.Int8ConvProblem, x_dtype: np.dtype,
                 y_dtype: np.dtype, zero_points: tuple[bool, bool] = (True, True),
                 post_ops: tuple = ()) -> None:
        g = p.groups
        wshape = (p.k, p.c, p.r, p.s) if g == 1 else (g, p.k // g, p.c // g, p.r, p.s)
        src = d.memory_desc((p.n, p.c, p.h, p.w), x_dtype, tag="acdb")
        wei = d.memory_desc(wshape, "s8", tag="any")
        dst = d.memory_desc(p.output_shape, y_dtype, tag="acdb")
        bias = d.memory_desc((p.k,), "f32", tag="a") if p.has_bias else None
        pt, pl, pb, pr = p.padding
        dil = (p.dilation[0] - 1, p.dilation[1] - 1)  # oneDNN counts dilation from 0
        # Filters are dim 0 of OIHW, dims 0 and 1 of grouped GOIHW: scales vary along them.
        zp_args = [arg for arg, on in zip((ARG_SRC, ARG_DST), zero_points, strict=True) if on]
        attr = d.attr(post_ops=post_ops, scales={ARG_WEIGHTS: 1 if g == 1 else 3},
                      zero_points={arg: 0 for arg in zp_args})
        pd = d.create_pd(
            "dnnl_convolution_forward_primitive_desc_create", d.engine,
            d.prop["forward_inference"], d.alg["convolution_direct"], src.handle, wei.handle,
            bias.handle if bias else None, dst.handle, onednn.Dims(*p.stride),
            onednn.Dims(*dil), onednn.Dims(pt, pl), onednn.Dims(pb, pr), attr.handle)
        args: dict[int, Any] = {ARG_SRC: src, ARG_WEIGHTS: QUERY_WEIGHTS_MD, ARG_DST: dst,
                                ARG_ATTR_SCALES | ARG_WEIGHTS: d.memory_desc((p.k,), "f32")}
        for arg in zp_args:
            args[ARG_ATTR_ZERO_POINTS | arg] = d.memory_desc((1,), "s32")
        if bias:
            args[ARG_BIAS] = bias
        for i, op in enumerate(post_ops):
            if op[0] == "binary":
                args[onednn.arg_post_op(i)] = op[2]
        self.prim = Primitive(d, pd, args)
        self.wei_reorder = reorder(d, d.memory_desc(wshape, "s8"), self.prim.mds[ARG_WEIGHTS])
        self.impl = self.prim.impl

    def pack_weights(self, w: np.ndarray) -> np.ndarray:
        """int8 OIHW filters in the layout the primitive chose (with the compensation for
        the src zero point that oneDNN's reorder appends)."""
        if self.wei_reorder is None:
            return w
        packed = aligned_empty(self.prim.mds[ARG_WEIGHTS].size, np.uint8)
        self.wei_reorder.execute({ARG_SRC: w, ARG_DST: packed})
        return packed


class QMatmul:
    """oneDNN's int8 matmul with requantization fused: (M, K) u8/s8 A with a zero point,
    (K, N) s8 B with float32 scales (one, or one per column), u8/s8 (M, N) out."""

    def __init__(self, d: onednn.OneDNN, p: spec.Int8GemmProblem, a_dtype: np.dtype,
                 y_dtype: np.dtype, per_column: bool) -> None:
        src = d.memory_desc((p.m, p.k), a_dtype, tag="ab")
        wei = d.memory_desc((p.k, p.n), "s8", tag="any")
        dst = d.memory_desc((p.m, p.n), y_dtype, tag="ab")
        attr = d.attr(scales={ARG_WEIGHTS: 2 if per_column else 0},
                      zero_points={ARG_SRC: 0, ARG_DST: 0})
        pd = d.create_pd("dnnl_matmul_primitive_desc_create", d.engine, src.handle,
                         wei.handle, None, dst.handle, attr.handle)
        count = p.n if per_column else 1
        self.prim = Primitive(d, pd, {
            ARG_SRC: src, ARG_WEIGHTS: QUERY_WEIGHTS_MD, ARG_DST: dst,
            ARG_ATTR_SCALES | ARG_WEIGHTS: d.memory_desc((count,), "f32"),
            ARG_ATTR_ZERO_POINTS | ARG_SRC: d.memory_desc((1,), "s32"),
            ARG_ATTR_ZERO_POINTS | ARG_DST: d.memory_desc((1,), "s32")})
        self.wei_reorder = reorder(d, d.memory_desc((p.k, p.n), "s8"),
                                    self.prim.mds[ARG_WEIGHTS])

    pack_weights = QConv.pack_weights


class Epilogue:
    """``act(y + bias + residual)`` in place over one (K, pixels) plain image: a binary
    add primitive (src0 = dst = y) whose bias and relu are post-ops, or an in-place relu
    alone. Every variant is one multithreaded pass over y."""

    def __init__(self, d: onednn.OneDNN, k: int, pixels: int, bias: bool, residual: bool,
                 activation: str | None) -> None:
        # 3-D (1, K, pixels): the bias then broadcasts along dim 1, oneDNN's "per_oc",
        # which its jit binary kernels take as a post-op; (K, 1) against 2-D (K, pixels)
        # fell back to ref:any, 1000x slower.
        md = d.memory_desc((1, k, pixels), "f32", tag="abc")
        self.bias, self.residual = bias, residual
        self.bias_arg = ARG_SRC_1
        if not bias and not residual:  # the activation alone
            alg, alpha, beta = ONEDNN_ACTIVATIONS[activation]
            self.prim = build_eltwise(d, alg, k * pixels, alpha, beta)
            return
        bias_md = d.memory_desc((1, k, 1), "f32", tag="abc")
        post_ops: list[tuple] = []
        if bias and residual:
            post_ops.append(("binary", "binary_add", bias_md))
            self.bias_arg = onednn.arg_post_op(0)
        if activation is not None:
            post_ops.append(("eltwise", *ONEDNN_ACTIVATIONS[activation]))
        src1 = md if residual else bias_md
        attr = d.attr(post_ops=post_ops)
        pd = d.create_pd("dnnl_binary_primitive_desc_create", d.engine, d.alg["binary_add"],
                         md.handle, src1.handle, md.handle, attr.handle)
        args: dict[int, Any] = {ARG_SRC: md, ARG_SRC_1: src1, ARG_DST: md}
        if bias and residual:
            args[self.bias_arg] = bias_md
        self.prim = Primitive(d, pd, args)

    def execute(self, y: np.ndarray, bias: np.ndarray | None,
                residual: np.ndarray | None) -> None:
        buffers = {ARG_SRC: y, ARG_DST: y}
        if residual is not None:
            buffers[ARG_SRC_1] = residual
        if bias is not None:
            buffers[self.bias_arg] = bias
        self.prim.execute(buffers)


def reorder(d: onednn.OneDNN, src: onednn.MemoryDesc,
             dst: onednn.MemoryDesc) -> Primitive | None:
    """A reorder primitive, or None when the two layouts are the same."""
    if src == dst:
        return None
    attr = d.attr()
    pd = d.create_pd("dnnl_reorder_primitive_desc_create", src.handle, d.engine, dst.handle,
                     d.engine, attr.handle)
    return Primitive(d, pd, {ARG_SRC: src, ARG_DST: dst})


def build_scaling_reorder(d: onednn.OneDNN, kind: str, size: int | tuple[int, ...],
                           src_dtype: np.dtype, dst_dtype: np.dtype, src_tag: str = "a",
                           dst_tag: str = "a") -> Primitive:
    """A reorder that quantizes (dst scale and zero point) or dequantizes (src's): flat
    (``size`` elements), or of a ``size`` shape from ``src_tag`` to ``dst_tag`` (NCHW
    float32 to NHWC codes: the layout change in the same pass)."""
    shape = (size,) if isinstance(size, int) else tuple(size)
    src = d.memory_desc(shape, src_dtype, tag=src_tag)
    dst = d.memory_desc(shape, dst_dtype, tag=dst_tag)
    arg = ARG_DST if kind == "quantize" else ARG_SRC
    attr = d.attr(scales={arg: 0}, zero_points={arg: 0})
    pd = d.create_pd("dnnl_reorder_primitive_desc_create", src.handle, d.engine, dst.handle,
                     d.engine, attr.handle)
    return Primitive(d, pd, {ARG_SRC: src, ARG_DST: dst,
                             ARG_ATTR_SCALES | arg: d.memory_desc((1,), "f32"),
                             ARG_ATTR_ZERO_POINTS | arg: d.memory_desc((1,), "s32")})


def build_qadd(d: onednn.OneDNN, size: int, a_dtype: np.dtype, b_dtype: np.dtype,
               y_dtype: np.dtype, offset: float, relu: bool, y_zero: int) -> Primitive:
    """QLinearAdd over ``size`` flat 8-bit codes in float32, one binary primitive:
    ``y = saturate(rint(relu?(ra·a + rb·b + offset) + y_zero))`` with ``ra``, ``rb``
    (``a_scale/y_scale``, ``b_scale/y_scale``) given at execution as src scales and
    ``offset = -(ra·a_zero + rb·b_zero)`` a post-op (oneDNN's binary takes no zero points)."""
    a = d.memory_desc((size,), a_dtype, tag="a")
    b = d.memory_desc((size,), b_dtype, tag="a")
    dst = d.memory_desc((size,), y_dtype, tag="a")
    if relu:
        post_ops = [("eltwise", "eltwise_linear", 1.0, offset),
                    ("eltwise", "eltwise_relu", 0.0, 0.0),
                    ("eltwise", "eltwise_linear", 1.0, float(y_zero))]
    else:
        post_ops = [("eltwise", "eltwise_linear", 1.0, offset + y_zero)]
    attr = d.attr(post_ops=post_ops, scales={ARG_SRC: 0, ARG_SRC_1: 0})
    pd = d.create_pd("dnnl_binary_primitive_desc_create", d.engine, d.alg["binary_add"],
                     a.handle, b.handle, dst.handle, attr.handle)
    scale = d.memory_desc((1,), "f32")
    return Primitive(d, pd, {ARG_SRC: a, ARG_SRC_1: b, ARG_DST: dst,
                             ARG_ATTR_SCALES | ARG_SRC: scale,
                             ARG_ATTR_SCALES | ARG_SRC_1: scale})


def build_requant_into(d: onednn.OneDNN, shape: tuple[int, ...], channels: int, start: int,
                       x_dtype: np.dtype, y_dtype: np.dtype, scaled: bool,
                       interleave: int = 1) -> Primitive:
    """8-bit NHWC codes of ``shape`` (NCHW dims) copied into channels ``start``... of an
    NHWC output with ``channels`` channels, one reorder; ``scaled``: requantized on the
    way, ``x·x_scale / y_scale`` in float32 (scales given at execution). Zero points must
    be 0: this oneDNN's jit reorder ignores them when the dst is strided (it kept 20 for
    ``(20 - 10)·1 + 3``). ``interleave`` g > 1: instead, channel j goes to channel j·g
    of an NHWC output of c·g channels (a channel shuffle; the caller offsets the address
    by the group), one jit reorder (16 µs for 28x28x58 where NumPy's strided copy took
    31 µs)."""
    n, c, h, w = shape
    src = d.memory_desc(shape, x_dtype, tag="acdb")
    if interleave > 1:  # channel j at j·interleave (+ the group's offset in the address)
        wide = c * interleave
        dst = d.strided_memory_desc(shape, y_dtype, (h * w * wide, interleave, w * wide, wide))
    else:
        parent = d.memory_desc((n, channels, h, w), y_dtype, tag="acdb")
        dst = d.submemory_desc(parent, shape, (0, start, 0, 0))
    attr = d.attr(scales={ARG_SRC: 0, ARG_DST: 0} if scaled else None)
    pd = d.create_pd("dnnl_reorder_primitive_desc_create", src.handle, d.engine, dst.handle,
                     d.engine, attr.handle)
    args: dict[int, Any] = {ARG_SRC: src, ARG_DST: dst}
    if scaled:
        args[ARG_ATTR_SCALES | ARG_SRC] = args[ARG_ATTR_SCALES | ARG_DST] = \
            d.memory_desc((1,), "f32")
    return Primitive(d, pd, args)


def build_eltwise(d: onednn.OneDNN, alg: str, size: int, alpha: float = 0.0,
                  beta: float = 0.0) -> Primitive:
    md = d.memory_desc((size,), "f32", tag="a")
    attr = d.attr()
    pd = d.create_pd("dnnl_eltwise_forward_primitive_desc_create", d.engine,
                     d.prop["forward_inference"], d.alg[alg], md.handle, md.handle,
                     float(alpha), float(beta), attr.handle)
    return Primitive(d, pd, {ARG_SRC: md, ARG_DST: md})


def build_logistic_backward(d: onednn.OneDNN, size: int) -> Primitive:
    """σ'(x)·dy from σ's output y (``logistic_use_dst_for_bwd``): dy·y·(1−y)."""
    md = d.memory_desc((size,), "f32", tag="a")
    alg = d.alg["eltwise_logistic_use_dst_for_bwd"]
    attr = d.attr()
    hint = d.create_pd("dnnl_eltwise_forward_primitive_desc_create", d.engine,
                       d.prop["forward_training"], alg, md.handle, md.handle, 0.0, 0.0,
                       attr.handle)
    try:
        pd = d.create_pd("dnnl_eltwise_backward_primitive_desc_create", d.engine, alg, md.handle,
                         md.handle, md.handle, 0.0, 0.0, hint, attr.handle)
    finally:
        d.lib.dnnl_primitive_desc_destroy(hint)
    return Primitive(d, pd, {ARG_DIFF_SRC: QUERY_DIFF_SRC_MD, ARG_DIFF_DST: md, ARG_DST: md})


class BlockedPool:
    """Pooling from and to nChw16c (or ``tag``: NHWC), plus the reorder of its output
    back to NCHW."""

    def __init__(self, d: onednn.OneDNN, p: spec.PoolProblem, tag: str = BLOCKED_TAG) -> None:
        self.tag = tag
        self.prim = build_pooling(d, p, tag)
        self.to_plain = reorder(d, self.prim.mds[ARG_DST],
                                 d.memory_desc(p.output_shape, "f32", tag="abcd"))


def build_pooling(d: onednn.OneDNN, p: spec.PoolProblem, tag: str = "abcd",
                  dtype: Any = "f32") -> Primitive:
    """Max or average pooling on plain NCHW (or ``tag``), float32 (or ``dtype``: max
    pooling of 8-bit codes). ONNX's ceil mode is oneDNN's floor formula
    with the end padding adjusted (``floor_end_padding``): padded pixels never win a max
    and never count in avg-exclude-padding (avg-include-padding is rescaled by the caller
    where ceil mode overhangs the explicit padding)."""
    if p.kind == "max":
        alg = "pooling_max"
    else:
        alg = "pooling_avg_include_padding" if p.count_include_pad else \
            "pooling_avg_exclude_padding"
    src = d.memory_desc((p.n, p.c, p.h, p.w), dtype, tag=tag)
    dst = d.memory_desc(p.output_shape, dtype, tag=tag)
    pt, pl = p.padding[:2]
    dil = (p.dilation[0] - 1, p.dilation[1] - 1)  # oneDNN counts dilation from 0
    attr = d.attr()
    pd = d.create_pd("dnnl_pooling_forward_primitive_desc_create", d.engine,
                     d.prop["forward_inference"], d.alg[alg], src.handle, dst.handle,
                     onednn.Dims(*p.stride), onednn.Dims(*p.kernel), onednn.Dims(*dil),
                     onednn.Dims(pt, pl), onednn.Dims(*p.floor_end_padding), attr.handle)
    return Primitive(d, pd, {ARG_SRC: src, ARG_DST: dst})


def build_qglobal_avg_pool(d: onednn.OneDNN, shape: tuple[int, int, int, int], tag: str,
                           x_dtype: np.dtype, y_dtype: np.dtype, alpha: float,
                           beta: float) -> Primitive:
    """QLinearGlobalAveragePool on 8-bit codes of NCHW ``shape`` laid out as ``tag``, one
    average pooling in float32: ``y = saturate(rint(alpha·mean(x) + beta))`` (``alpha =
    x_scale/y_scale``, ``beta = y_zero - alpha·x_zero``, an eltwise post-op)."""
    n, c, h, w = shape
    src = d.memory_desc(shape, x_dtype, tag=tag)
    dst = d.memory_desc((n, c, 1, 1), y_dtype, tag=tag)
    attr = d.attr(post_ops=[("eltwise", "eltwise_linear", alpha, beta)])
    pd = d.create_pd("dnnl_pooling_forward_primitive_desc_create", d.engine,
                     d.prop["forward_inference"], d.alg["pooling_avg_exclude_padding"],
                     src.handle, dst.handle, onednn.Dims(1, 1), onednn.Dims(h, w),
                     onednn.Dims(0, 0), onednn.Dims(0, 0), onednn.Dims(0, 0), attr.handle)
    return Primitive(d, pd, {ARG_SRC: src, ARG_DST: dst})


def build_softmax(d: onednn.OneDNN, dims: tuple[int, int, int]) -> Primitive:
    """Softmax over axis 1 of a plain (outer, axis, inner) tensor (``softmax_accurate``
    subtracts the max first)."""
    md = d.memory_desc(dims, "f32", tag="abc")
    attr = d.attr()
    pd = d.create_pd("dnnl_softmax_forward_primitive_desc_create", d.engine,
                     d.prop["forward_inference"], d.alg["softmax_accurate"], md.handle,
                     md.handle, 1, attr.handle)
    return Primitive(d, pd, {ARG_SRC: md, ARG_DST: md})


def build_binary(d: onednn.OneDNN, alg: str, shape: tuple[int, ...],
                  src1_shape: tuple[int, ...]) -> Primitive:
    """src0 (full ``shape``) <op> src1 (``src1_shape``, 1 where it broadcasts), plain."""
    src0 = d.memory_desc(shape, "f32")
    src1 = d.memory_desc(src1_shape, "f32")
    dst = d.memory_desc(shape, "f32")
    attr = d.attr()
    pd = d.create_pd("dnnl_binary_primitive_desc_create", d.engine, d.alg[alg], src0.handle,
                     src1.handle, dst.handle, attr.handle)
    return Primitive(d, pd, {ARG_SRC: src0, ARG_SRC_1: src1, ARG_DST: dst})


def build_lrn(d: onednn.OneDNN, p: spec.LrnProblem, tag: str = "abcd") -> Primitive:
    """LRN across channels (on NCHW, or ``tag``). oneDNN's formula divides alpha by the
    window size exactly as ONNX does (checked against the float64 reference), so alpha
    passes unchanged; its window is centred like ONNX's for the odd sizes the spec allows."""
    md = d.memory_desc(p.shape, "f32", tag=tag)
    attr = d.attr()
    pd = d.create_pd("dnnl_lrn_forward_primitive_desc_create", d.engine,
                     d.prop["forward_inference"], d.alg["lrn_across_channels"], md.handle,
                     md.handle, p.size, p.alpha, p.beta, p.bias, attr.handle)
    return Primitive(d, pd, {ARG_SRC: md, ARG_DST: md})


class BlockedConcat:
    """Channel concat from and to nChw16c (or ``tag``: NHWC), plus the reorder of its
    output to NCHW."""

    def __init__(self, d: onednn.OneDNN, p: spec.ConcatProblem, tag: str = BLOCKED_TAG) -> None:
        self.tag = tag
        self.prim = build_concat(d, p, tag)
        self.to_plain = reorder(d, self.prim.mds[ARG_DST],
                                 d.memory_desc(p.shape, "f32", tag="abcd"))


# Concat outputs of at least this many bytes use oneDNN's concat primitive, smaller ones
# np.concatenate. Measured on the 2-core Zen 4 host (NCHW, axis 1, median of 30):
# 6.4 MB out 109 vs 169 us, 25.7 MB 1019 vs 1537 us, 1.8 MB 39 vs 45 us (oneDNN copies
# with every thread, NumPy with one), but 0.8 MB 29 vs 24 us and 0.2 MB 18 vs 9 us
# (a primitive call's ctypes overhead is ~10 us).
CONCAT_MIN_BYTES = 1 << 20


def build_concat(d: onednn.OneDNN, p: spec.ConcatProblem, tag: str | None = None) -> Primitive:
    """oneDNN's concat primitive (``simple:any``: parallel copies), plain unless ``tag``."""
    srcs = [d.memory_desc(shape, "f32", tag=tag) for shape in p.shapes]
    dst = d.memory_desc(p.shape, "f32", tag=tag)
    handles = (ctypes.c_void_p * len(srcs))(*[md.handle.value for md in srcs])
    attr = d.attr()
    pd = d.create_pd("dnnl_concat_primitive_desc_create", d.engine, dst.handle, len(srcs),
                     p.axis, handles, attr.handle)
    args: dict[int, Any] = {ARG_MULTIPLE_SRC + i: md for i, md in enumerate(srcs)}
    args[ARG_DST] = dst
    return Primitive(d, pd, args)

