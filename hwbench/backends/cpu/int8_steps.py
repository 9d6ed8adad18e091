"""onnxruntime's int8 QOperator nodes as a compiled plan replays them in the
``float32-requant`` mode (issue 16: ``Backend._prepared_step``, ``hwbench.graph.plan``).

QLinearAdd, QGemm, QLinearConcat, QLinearGlobalAveragePool and hwbench's fused int8
convolutions (QLinearConvAdd, QLinearConvRequant, QLinearConvDequantAdd) run as one
oneDNN primitive each in that mode (``float32_requant``, ``int8_conv_add``,
``int8_conv_requant``), but they begin no checked kernel, so the plan replayed their op
functions: per run, the scales' ``.item()``s, the zero point defaults, the primitive
cache's keys and, for QGemm, ``spec.check_conv2d_int8`` and ``check_requantization``
(75 µs), where the primitive itself takes 5–100 µs. Here each is built once, on the
traced arguments (a fused conv: the plan its traced call used), into a call that checks
only that every parameter and weight is the object it was traced with and each
activation holds the traced shape and dtype, contiguous, then runs the same bound
primitive (the ``BoundPrimitive`` runner the op path caches, or ``int8_prepared``'s for
QGemm's conv): the same values bit for bit, which the build verifies against the traced
output before the plan takes the call. Anything else runs the op function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.bound_primitive import BoundPrimitive, binder, out_factory
from hwbench.backends.cpu.chain_links import Link, nhwc, reorder_then, table_bind, table_into
from hwbench.backends.cpu.chain_links import codes as codes_kind
from hwbench.backends.cpu.float32_requant import _concat_codes, _scalar
from hwbench.backends.cpu.int8_conv_add import RESIDUAL
from hwbench.backends.cpu.int8_prepared import _codes_in, _qconv
from hwbench.backends.cpu.int8_tables import lookup, unary_table
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, ARG_SRC_1, arg_post_op

_ndarray = np.ndarray


def _zero(value: Any, codes: Any) -> Any:
    """An omitted zero point: 0 of the codes' dtype (ONNX's rule, ``qoperator._zero_point``)."""
    return np.zeros((), codes.dtype) if value is None else value


def _same_codes(got: Any, want: Any) -> bool:
    """Whether two results hold the same codes in the same layout."""
    if type(got) is not type(want):
        return False
    if type(got) is ChannelsLastArray:
        got, want = got.nhwc, want.nhwc
    return got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want)


def _qadd(be: Any, step: Any, args: list, out: Any) -> Callable | None:
    """QLinearAdd (``fused_relu`` too) of channels-last codes: ``_qadd_fused``'s runner."""
    if len(args) != 8 or type(args[0]) is not ChannelsLastArray \
            or type(args[3]) is not ChannelsLastArray:
        return None
    a, sa, za, b, sb, zb, sy, zy = args
    ca, cb = a.nhwc, b.nhwc
    zy = _zero(zy, ca)
    params = [_scalar(v) for v in (sa, _zero(za, ca), sb, _zero(zb, cb), sy, zy)]
    if ca.shape != cb.shape or None in params or not ca.flags.c_contiguous \
            or not cb.flags.c_contiguous:
        return None
    y_dtype = np.asarray(zy).dtype
    run = be._qadd_runner(ca, cb, y_dtype, params, bool(step.node.attrs.get("fused_relu", 0)))
    if run is None:
        return None
    shape, a_dtype, b_dtype = ca.shape, ca.dtype, cb.dtype
    new_out = out_factory(be, shape, y_dtype)

    add = _two_codes(run, (shape, a_dtype), (shape, b_dtype), new_out)
    return _guarded(be, step, args, (0, 3), add)


def _one_codes(run: Callable, kind: tuple, new_out: Callable) -> Callable:
    """``run(x, out)`` on a channels-last code array of the traced (shape, dtype) into a
    fresh output; None (the op function's turn) for anything else."""
    shape, dtype = kind

    def call(x: Any) -> Any:
        if not _codes_in(x, shape, dtype):
            return None
        out, a_out = new_out()
        run(address(x.nhwc), a_out)
        return ChannelsLastArray(out)
    return call


def _two_codes(run: Callable, a_kind: tuple, b_kind: tuple, new_out: Callable) -> Callable:
    """``run(a, b, out)`` on two channels-last code arrays of the traced (shape, dtype)s
    into a fresh output; None (the op function's turn) for anything else."""
    (a_shape, a_dtype), (b_shape, b_dtype) = a_kind, b_kind

    def call(a: Any, b: Any) -> Any:
        if not (_codes_in(a, a_shape, a_dtype) and _codes_in(b, b_shape, b_dtype)):
            return None
        out, a_out = new_out()
        run(address(a.nhwc), address(b.nhwc), a_out)
        return ChannelsLastArray(out)
    return call


def _qgemm(be: Any, step: Any, args: list, out: Any) -> Callable | None:
    """QGemm with an 8-bit output: ``qgemm_requant``'s 1x1 conv on A's rows, its checks
    made once (``_qgemm_as_conv``) and its conv ``int8_prepared``'s bound replay."""
    attrs = step.node.attrs
    if len(args) != 9 or args[7] is None or attrs.get("transA", 0) \
            or float(attrs.get("alpha", 1.0)) != 1.0 or type(args[0]) is not _ndarray:
        return None
    a, sa, za, b, sb, zb, bias, sy, zy = args
    b_nk = b if attrs.get("transB", 0) else be.transpose(b, (1, 0))  # frozen: kept once
    conv = be._qgemm_as_conv(a, sa, _zero(za, a), b_nk, sb, _zero(zb, b), sy, _zero(zy, a),
                             bias)
    if conv is None:
        return None
    p, x, w, zx, zw, bias, fixed, zy = conv
    call = _qconv(be, p, be._qconv2d_fused, (x, w, zx, zw, bias, fixed, zy), {})
    if call is None:
        return None
    shape, dtype, (m, k), n = a.shape, a.dtype, a.shape, p.k

    def gemm(a: Any) -> Any:
        if type(a) is not _ndarray or a.shape != shape or a.dtype != dtype \
                or not a.flags.c_contiguous:
            return None
        y = call(ChannelsLastArray(a.reshape(m, 1, 1, k)), w, zx, zw, bias, fixed, zy)
        return None if type(y) is not ChannelsLastArray else y.nhwc.reshape(m, n)
    return _guarded(be, step, args, (0,), gemm)


def _qconcat(be: Any, step: Any, args: list, out: Any) -> Callable | None:
    """QLinearConcat on channels of channels-last codes: ``_qconcat_fused``'s reorders
    into one output, or with ``gather_channels`` a channel shuffle of its inputs,
    ``_qconcat_shuffled``'s (each input into its interleaved channels)."""
    if len(args) < 5 or (len(args) - 2) % 3:
        return None
    positions = tuple(range(2, len(args), 3))
    parts = [args[i] for i in positions]
    axis = step.node.attrs["axis"] % 4
    found = _concat_codes(parts, [(args[i + 1], args[i + 2]) for i in positions],
                          args[0], args[1], axis)
    if found is None:
        return None
    codes, scales, sy, y_dtype = found
    n, h, w, _ = codes[0].shape
    channels = sum(c.shape[3] for c in codes)
    order = step.node.attrs.get("gather_channels")
    groups, per = len(codes), codes[0].shape[3]
    if order is not None and (any(c.shape[3] != per for c in codes)
                              or not be._is_shuffle(order, groups, per)):
        return None
    runs, start = [], 0  # (runner, its output offset in bytes, input shape, dtype)
    for g, (c, sx) in enumerate(zip(codes, scales, strict=True)):
        if order is None:
            run = be._requant_runner(c, channels, start, y_dtype, sx, sy)
        else:
            run = be._requant_runner(c, channels, 0, y_dtype, sx, sy, groups)
        runs.append((run, 0 if order is None else g * y_dtype.itemsize, c.shape, c.dtype))
        start += c.shape[3]
    new_out = out_factory(be, (n, h, w, channels), y_dtype)

    def concat(*parts: Any) -> Any:
        for x, (_, _, shape, dtype) in zip(parts, runs, strict=True):
            if not _codes_in(x, shape, dtype):
                return None
        out, a_out = new_out()
        for x, (run, offset, _, _) in zip(parts, runs, strict=True):
            run(address(x.nhwc), a_out + offset)
        return ChannelsLastArray(out)
    return _guarded(be, step, args, positions, concat)


def _qgap(be: Any, step: Any, args: list, out: Any) -> Callable | None:
    """QLinearGlobalAveragePool of channels-last codes: ``_qgap_fused``'s pooling, bound."""
    if len(args) != 5 or type(args[0]) is not ChannelsLastArray \
            or not args[0].nhwc.flags.c_contiguous:
        return None
    x = args[0]
    prim = be._qgap_primitive(x, args[1], _zero(args[2], x.nhwc), args[3],
                              _zero(args[4], x.nhwc))
    if prim is None:
        return None
    run = BoundPrimitive(prim, {}, (ARG_SRC, ARG_DST)).runner()
    shape, dtype = x.nhwc.shape, x.dtype
    y_dtype = np.asarray(_zero(args[4], x.nhwc)).dtype
    new_out = out_factory(be, (shape[0], 1, 1, shape[3]), y_dtype)
    return _guarded(be, step, args, (0,), _one_codes(run, (shape, dtype), new_out))


def _qunary(be: Any, step: Any, args: list, out: Any) -> Callable | None:
    """QLinearSigmoid/QLinearLeakyRelu of 8-bit codes: the lookup in the table the traced
    run filled (``int8_tables.unary_table``), with a link (``chain_links``) that looks up
    between a chain's buffers."""
    if len(args) != 5 or any(a is None for a in args):
        return None
    x = args[0]
    held = type(x) is ChannelsLastArray
    codes = x.nhwc if held else x
    if type(codes) is not _ndarray or not codes.flags.c_contiguous:
        return None
    key = (step.node.op_type, repr(sorted(step.node.attrs.items())))  # ``_run_unary``'s
    table = unary_table(None, key, codes.dtype, *args[1:])
    if table is None:
        return None
    shape, dtype = codes.shape, codes.dtype
    new_out = out_factory(be, shape, table.dtype)

    def unary(x: Any) -> Any:
        a = x.nhwc if held and type(x) is ChannelsLastArray else x
        if type(a) is not _ndarray or a.shape != shape or a.dtype != dtype \
                or not a.flags.c_contiguous:
            return None
        y, _ = new_out()
        lookup(table, a, y)
        return ChannelsLastArray(y) if held else y
    call = _guarded(be, step, args, (0,), unary)
    kind = nhwc if held else codes_kind
    call.link = Link(table_into(table, shape, dtype), kind(shape, dtype),
                     kind(shape, table.dtype), table_bind(table, shape, dtype))
    return call


def _traced_plan(be: Any, args: list, count: int, out: Any) -> tuple | None:
    """The plan of the fused convolution of ``count`` inputs whose traced call gave
    ``out`` (the kernel keeps its last one: ``qconv_add``, ``qconv_requant``,
    ``qconv_dequant_add``), or None."""
    if len(args) != count:
        return None
    traced = getattr(be, "_traced_fused", None)
    be._traced_fused = None
    return traced[1] if traced is not None and traced[0] is out else None


def _qconv_add(be: Any, step: Any, args: list, out: Any) -> Callable | None:
    """QLinearConvAdd (``int8_conv_add``): its convolution with the Add's post-ops, bound."""
    plan = _traced_plan(be, args, 14, out)
    if plan is None:
        return None
    conv, bound, out_shape, y_dtype = plan
    run = BoundPrimitive(conv.prim, bound, (ARG_SRC, arg_post_op(RESIDUAL), ARG_DST)).runner()
    conv_add = _two_codes(run, (args[0].nhwc.shape, args[0].dtype), (out_shape, args[9].dtype),
                          out_factory(be, out_shape, y_dtype))
    return _guarded(be, step, args, (0, 9), conv_add)


def _qconv_requant(be: Any, step: Any, args: list, out: Any) -> Callable | None:
    """QLinearConvRequant (``int8_conv_requant``): its convolution with the post-ops, bound."""
    plan = _traced_plan(be, args, 11, out)
    if plan is None:
        return None
    conv, bound, out_shape, y_dtype = plan
    return _held_one(be, step, args, conv.prim, bound, out_shape, y_dtype)


def _held_one(be: Any, step: Any, args: list, prim: Any, bound: dict,
              out_shape: tuple[int, ...], out_dtype: Any) -> Callable:
    """A fused conv's bound step on its one activation, with its link: channels-last
    codes, or plain NCHW codes (``_held_codes``: their NHWC reorder bound before the
    conv)."""
    run = BoundPrimitive(prim, bound, (ARG_SRC, ARG_DST)).runner()
    new_out = out_factory(be, out_shape, out_dtype)
    x, before = args[0], None
    if type(x) is ChannelsLastArray:
        fast, src = _one_codes(run, (x.nhwc.shape, x.dtype), new_out), nhwc(x.nhwc.shape,
                                                                            x.dtype)
    else:
        shape, dtype = x.shape, x.dtype
        transpose = be._codes_transpose(shape, dtype)
        if transpose is not None:
            before = (transpose, x.nbytes)
            run = reorder_then(BoundPrimitive(transpose, {}, (ARG_SRC, ARG_DST)).runner(),
                               run, x.nbytes)

        def fast(x: Any) -> Any:
            if type(x) is not _ndarray or x.shape != shape or x.dtype != dtype \
                    or not x.flags.c_contiguous:
                return None
            out, a_out = new_out()
            run(address(x), a_out)
            return ChannelsLastArray(out)
        src = codes_kind(shape, dtype)
    call = _guarded(be, step, args, (0,), fast)
    call.link = Link(run, src, nhwc(out_shape, out_dtype), binder(prim, bound, before))
    return call


def _qconv_dequant_add(be: Any, step: Any, args: list, out: Any) -> Callable | None:
    """QLinearConvDequantAdd: its convolution with a float32 output and the residual read
    by a binary post-op, bound."""
    plan = _traced_plan(be, args, 10, out)
    if plan is None:
        return None
    conv, bound, out_shape, residual = plan
    if residual is None:  # the conv and its dequantization alone
        return _held_one(be, step, args, conv.prim, bound, out_shape, np.float32)
    new_out = out_factory(be, out_shape, np.float32)
    if type(args[0]) is not ChannelsLastArray:
        return None
    x_kind = (args[0].nhwc.shape, args[0].dtype)
    run = BoundPrimitive(conv.prim, bound, (ARG_SRC, arg_post_op(residual), ARG_DST)).runner()
    conv_dequant_add = _two_codes(run, x_kind, (out_shape, np.dtype(np.float32)), new_out)
    return _guarded(be, step, args, (0, 9), conv_dequant_add)


def _affine_quantize(be: Any, step: Any, args: list, out: Any) -> Callable | None:
    """AffineQuantizeLinear (``int8_affine_quantize``): its binary primitive, bound; a
    squeeze-and-excitation gate is read each run beside the activation."""
    plan = _traced_plan(be, args, 5, out)
    if plan is None:
        return None
    prim, bound, gate, out_shape, y_dtype = plan
    x_kind = (args[0].nhwc.shape, args[0].dtype)
    new_out = out_factory(be, out_shape, y_dtype)
    if gate is None:
        run = BoundPrimitive(prim, bound, (ARG_SRC, ARG_DST)).runner()
        return _guarded(be, step, args, (0,), _one_codes(run, x_kind, new_out))
    if type(args[1]) is not ChannelsLastArray:  # a gate held NCHW: the op function's
        return None
    run = BoundPrimitive(prim, bound, (ARG_SRC, ARG_SRC_1, ARG_DST)).runner()
    scaled = _two_codes(run, x_kind, (args[1].nhwc.shape, gate[1]), new_out)
    return _guarded(be, step, args, (0, 1), scaled)


def _guarded(be: Any, step: Any, args: list, activations: tuple[int, ...],
             fast: Callable) -> Callable:
    """``fast(*activations)`` for the node's inputs while every other input is the object
    it was traced with (the plan's constants: scales, zero points, weights) and ``fast``
    takes the activations (not None); else the op function. Threads: the count the op
    function's fused path would set (the last kernel's)."""
    fixed = tuple((i, a) for i, a in enumerate(args) if i not in activations)
    count = len(args)
    fn, dnnl = step.fn, be.dnnl

    def call(*ins: Any) -> Any:
        if len(ins) == count:
            for i, a in fixed:  # a loop, not all() over a generator: ~1 µs less a call
                if ins[i] is not a:
                    break
            else:
                dnnl.set_num_threads(be._threads_now)
                out = fast(*[ins[i] for i in activations])
                if out is not None:
                    return out
        return fn(be, list(ins), step)
    call.fast, call.activations = fast, activations
    return call


_BUILDERS: dict[str, Callable] = {"QLinearAdd": _qadd, "QGemm": _qgemm,
                                  "QLinearConcat": _qconcat,
                                  "QLinearGlobalAveragePool": _qgap,
                                  "QLinearSigmoid": _qunary, "QLinearLeakyRelu": _qunary,
                                  "QLinearConvAdd": _qconv_add,
                                  "QLinearConvRequant": _qconv_requant,
                                  "QLinearConvDequantAdd": _qconv_dequant_add,
                                  "AffineQuantizeLinear": _affine_quantize}


def prepared_int8_step(be: Any, step: Any, args: list, out: Any) -> Callable | None:
    """The replay of a ``com.microsoft`` int8 node in the ``float32-requant`` mode, traced
    on ``args`` (giving ``out``), or None (the op function stays)."""
    build = _BUILDERS.get(step.node.op_type)
    if build is None or be.requantization != "float32" or not be.keep_blocked:
        return None
    call = build(be, step, args, out)
    if call is None:
        return None
    be.dnnl.set_num_threads(be._threads_now)
    got = call.fast(*(args[i] for i in call.activations))
    return call if got is not None and _same_codes(got, out) else None
