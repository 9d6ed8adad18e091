"""The cpu kernels a compiled plan replays with their per-call Python settled (issue 16).

A prepared call of ``_conv2d``, ``_gemm`` (with a fused activation too),
``_relu``/``_sigmoid``, ``_softmax``, a pooling kernel or a ``_mul``/``_add`` of blocked
activations is built on its first replay, from the arguments it meets: the cached
primitive the normal path uses (same key, same thread count, so the same results bit for
bit), the packed weights, and a ``BoundPrimitive``: the plan's own ``dnnl_memory_t`` per
argument, with the weights', bias' and scratchpad's data handles set once and a prebuilt
``dnnl_exec_arg_t`` array, so that a replayed call swaps only the source and destination
addresses before execute (and waits only on an asynchronous stream). Each call first
checks that its arguments are what the fast path was built for (plain C-contiguous
float32 of the traced shape, or a blocked array of the exact layout, the same weight
objects); anything else runs the backend's kernel as the normal path does. Outputs are
fresh arrays (or pool buffers nothing else holds), never reused while the caller holds
them.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.binary_in_place import in_place_binary
from hwbench.backends.cpu.blocked_layout import concat_in_layout, pool_in_layout
from hwbench.backends.cpu.bound_primitive import (
    BoundPrimitive,
    binder,
    blocked_call,
    blocked_parts,
)
from hwbench.backends.cpu.bound_primitive import blocked_result as _blocked
from hwbench.backends.cpu.bound_primitive import is_plain as _is_plain
from hwbench.backends.cpu.bound_primitive import out_factory as _out_factory
from hwbench.backends.cpu.bound_primitive import plain_call as _plain_call
from hwbench.backends.cpu.chain_links import (
    Link,
    blocked,
    plain,
    reorder_then,
    sgemm_into,
)
from hwbench.backends.cpu.concat_copy import copied_concat, copies_concat
from hwbench.backends.cpu.concat_in_place import in_place, register
from hwbench.backends.cpu.layouts import BLOCKED_TAG, BlockedArray
from hwbench.backends.cpu.onednn import (
    ARG_BIAS,
    ARG_DST,
    ARG_MULTIPLE_SRC,
    ARG_SRC,
    ARG_SRC_1,
    ARG_WEIGHTS,
    arg_post_op,
)
from hwbench.backends.cpu.pointwise import runs_as_gemm
from hwbench.backends.cpu.prepared_softmax import prepared_softmax

_F32 = np.dtype(np.float32)
_ndarray = np.ndarray


# -- builders: (backend, problem, kernel, traced args, kwargs) -> fast call or None ----------

def _conv(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    x, w, bias = args[:3]
    residual = kwargs.get("residual", args[3] if len(args) > 3 else None)
    activation = kwargs.get("activation", args[4] if len(args) > 4 else None)
    blocked_in = isinstance(x, BlockedArray)
    if len(args) > 3 or set(kwargs) - {"residual", "activation"}:
        return None
    if runs_as_gemm(be, p, blocked_in):
        return None
    conv = be._conv_primitive(p, residual, activation, x)
    # A shortcut only as the blocked binary-add post-op reading it in place (ResNet's,
    # MobileNet's residual joins); one summed into a pre-filled dst goes the kernel's way.
    res_md = conv.residual_md if residual is not None else None
    if residual is not None and (conv.residual != "blocked" or type(residual) is not
                                 BlockedArray or residual.md != res_md):
        return None
    packed = be._packed(conv, w)
    fixed = {ARG_WEIGHTS: packed}
    if bias is not None:
        fixed[ARG_BIAS] = np.ascontiguousarray(bias)
    if (ARG_BIAS in fixed) != (ARG_BIAS in conv.prim.mds):
        return None
    varying = (ARG_SRC, ARG_DST) if res_md is None else (ARG_SRC, arg_post_op(0), ARG_DST)
    run = BoundPrimitive(conv.prim, fixed, varying).runner()
    src_md, dst_md = conv.prim.mds[ARG_SRC], conv.prim.mds[ARG_DST]
    in_shape = (p.n, p.c, p.h, p.w)
    out_shape = tuple(p.output_shape)
    src_reorder = dst_reorder = None
    if conv.src_reorder is not None:
        src_reorder = BoundPrimitive(conv.src_reorder, {}, (ARG_SRC, ARG_DST)).runner()
    if conv.dst_reorder is not None:
        dst_reorder = BoundPrimitive(conv.dst_reorder, {}, (ARG_SRC, ARG_DST)).runner()
    from_md = from_reorder = from_prim = None
    if blocked_in and not (x.md is src_md or x.md == src_md):  # one reorder to src's layout
        from_md = x.md
        from_prim = conv.reorder_from(be.dnnl, from_md)
        from_reorder = BoundPrimitive(from_prim, {}, (ARG_SRC, ARG_DST)).runner()
    keep = be.keep_blocked and conv.dst_reorder is not None
    new_src = (_out_factory(be, src_md.size, np.uint8)
               if src_reorder or from_reorder else None)
    new_dst = _out_factory(be, dst_md.size, np.uint8) if conv.dst_reorder else None
    new_out = _out_factory(be, out_shape)
    to_plain = conv.dst_reorder
    w0, b0, act0 = w, bias, activation
    target, unregistered = [new_dst], [keep]  # a concat may redirect it (concat_in_place)

    def call(x, w, bias, residual=None, activation=activation):
        if w is not w0 or bias is not b0 or activation != act0 or (residual is None) != (
                res_md is None) or residual is not None and (
                type(residual) is not BlockedArray
                or not (residual.md is res_md or residual.md == res_md)):
            return kernel(p, x, w, bias, residual=residual, activation=activation)
        res = () if residual is None else (address(residual.buffer),)
        # The layout by identity first (the same descriptor objects run after run; an
        # equality test is a oneDNN call), then by value.
        md = x.md if type(x) is BlockedArray else None
        if md is not None and (md is src_md or (md is not from_md and md == src_md)):
            src, a_src = x.buffer, address(x.buffer)
        elif md is not None and from_md is not None and (md is from_md or md == from_md):
            src, a_src = new_src()
            from_reorder(address(x.buffer), a_src)
        elif _is_plain(x, in_shape):
            if src_reorder is not None:
                src, a_src = new_src()
                src_reorder(address(x), a_src)
            else:
                src, a_src = x, address(x)
        else:
            return kernel(p, x, w, bias, residual=residual, activation=activation)
        if new_dst is None:
            out, a_out = new_out()
            run(a_src, *res, a_out)
            return out
        dst, a_dst = target[0]()
        run(a_src, *res, a_dst)
        del src  # a reused source buffer is free again
        if keep:
            if unregistered[0]:
                unregistered[0] = False
                register(be, dst, target)
            return _blocked(dst, out_shape, dst_md, to_plain)
        out, a_out = new_out()
        dst_reorder(a_dst, a_out)
        return out
    if res_md is None and (blocked_in or src_reorder is None) and (new_dst is None or keep):
        # no residual: the primitive (after the reorder from the traced layout, if any)
        # into a plain or a kept-blocked dst
        into = run if from_md is None else reorder_then(from_reorder, run, src_md.size)
        call.link = Link(into, blocked(x.md) if blocked_in else plain(in_shape),
                         plain(out_shape) if new_dst is None else blocked(dst_md),
                         binder(conv.prim, fixed,
                                None if from_md is None else (from_prim, src_md.size)))
    return call


def _gemm(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    from hwbench.backends.cpu.blas_layout import leading_dim, row_major
    from hwbench.backends.cpu.fused_gemm import packs
    from hwbench.kernels import spec

    if kwargs.get("activation") is not None or packs(be, p):
        return _fused_gemm(be, p, kernel, args, kwargs)
    if be.mkl is not None or kwargs or len(args) != 3:
        return None
    a, b, bias = args
    if not _is_plain(a, a.shape if type(a) is _ndarray else ()) or a.ndim != 2:
        return None
    a_shape = a.shape
    sa, ta = row_major(a, spec.FLOAT32, p.trans_a)
    if sa is not a or ta != p.trans_a:
        return None
    b_plain = np.asarray(be._plain(b))
    sb, tb = row_major(b_plain, spec.FLOAT32, p.trans_b)
    fixed_b = (sb, address(sb), leading_dim(sb))
    lda = leading_dim(a)
    m, n, k = p.m, p.n, p.k
    new_out = _out_factory(be, (m, n))
    sgemm, check = be.dnnl.lib.dnnl_sgemm, be.dnnl.check
    # The constant arguments as ctypes objects: no conversion per call (~0.8 µs of 2.7).
    i64, f32 = ctypes.c_int64, ctypes.c_float
    ca, cb = ctypes.c_char(b"T" if ta else b"N"), ctypes.c_char(b"T" if tb else b"N")
    beta, alpha = f32(0.0 if bias is None else 1.0), f32(1.0)
    m, n, k, lda = i64(m), i64(n), i64(k), i64(lda)
    ldc = i64(max(1, p.n))
    b0, bias0 = b, bias
    addr_b, ldb = ctypes.c_void_p(fixed_b[1]), i64(fixed_b[2])

    def call(a, b, bias):
        if b is not b0 or bias is not bias0 or not _is_plain(a, a_shape):
            return kernel(p, a, b, bias)
        out, a_out = new_out()
        if bias is not None:
            out[...] = bias
        status = sgemm(ca, cb, m, n, k, alpha, address(a), lda, addr_b, ldb, beta,
                       a_out, ldc)
        if status:
            check(status, "dnnl_sgemm")
        return out
    call.kept = fixed_b  # the stored B must outlive the call
    call.link = Link(sgemm_into(sgemm, check, (ca, cb, m, n, k, alpha, None, lda, addr_b, ldb,
                                               beta, None, ldc), bias, (p.m, p.n)),
                     plain(a_shape), plain((p.m, p.n)))
    return call


def _fused_gemm(be: Any, p: Any, kernel: Callable, args: tuple,
                kwargs: dict) -> Callable | None:
    """``_gemm(..., activation=)`` or a ``_gemm`` that ``packs`` (``cpu/fused_gemm.py``):
    the cached matmul primitive bound to the packed weights and the bias, A read in
    place."""
    from hwbench.backends.cpu.fused_gemm import fuses, matmul_for, packed_weights

    activation = kwargs.get("activation")
    if set(kwargs) - {"activation"} or len(args) != 3 or not fuses(p):
        return None
    a, b, bias = args
    a_shape = (p.k, p.m) if p.trans_a else (p.m, p.k)
    if not _is_plain(a, a_shape) or type(b) is not _ndarray:
        return None
    mm = matmul_for(be, p, activation)
    fixed = {ARG_WEIGHTS: packed_weights(be, mm, p, activation, b)}
    if bias is not None:
        fixed[ARG_BIAS] = np.ascontiguousarray(bias).reshape(1, p.n)
    if (ARG_BIAS in fixed) != (ARG_BIAS in mm.prim.mds):
        return None
    run = BoundPrimitive(mm.prim, fixed, (ARG_SRC, ARG_DST)).runner()
    new_out = _out_factory(be, (p.m, p.n))
    b0, bias0, act0 = b, bias, activation

    def call(a, b, bias, activation=activation):
        if b is not b0 or bias is not bias0 or activation != act0 \
                or not _is_plain(a, a_shape):
            return kernel(p, a, b, bias, activation=activation)
        out, a_out = new_out()
        run(address(a), a_out)
        return out
    call.link = Link(run, plain(a_shape), plain((p.m, p.n)), binder(mm.prim, fixed))
    return call


def _flat(prim_of: Callable[[Any, Any], Any]) -> Callable:
    """A builder for a one-input kernel whose primitive reads plain ``p.shape`` and
    writes the same shape (eltwise, softmax)."""
    def build(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
        if kwargs or len(args) != 1 or not _is_plain(args[0], tuple(p.shape)):
            return None
        return _plain_call(be, prim_of(be, p), tuple(p.shape), tuple(p.shape), kernel, p)
    return build


def _blocked_relu(be: Any, p: Any, kernel: Callable, args: tuple,
                  kwargs: dict) -> Callable | None:
    """``_relu`` of a blocked activation (``BlockedOps._blocked_eltwise``: the whole
    buffer, padding and all, in its own layout), bound; a plain one as ``_flat``'s."""
    from hwbench.backends.cpu.primitives import build_eltwise

    x = args[0] if len(args) == 1 and not kwargs else None
    if type(x) is not BlockedArray or not be.keep_blocked:
        return _flat(_eltwise_prim("eltwise_relu"))(be, p, kernel, args, kwargs)
    md = x.md
    size = md.size
    prim = be._primitive(("eltwise", "eltwise_relu", size // 4),
                         lambda: build_eltwise(be.dnnl, "eltwise_relu", size // 4))
    return blocked_call(be, prim, md, md, tuple(x.shape), x._to_plain, kernel, p)


def blocked_concat(be: Any, p: Any, kernel: Callable, parts: Any) -> Callable | None:
    """``_concat`` of nChw16c activations along channels (DenseNet's 58, SqueezeNet's
    fire modules): ``BlockedConcat``'s primitive bound once, its sources' layouts checked
    by identity first. The kernel's lookups, layout comparisons and dicts cost ~25 µs a
    call beside oneDNN's ~50 µs copy (DenseNet-121's 14×14 concats). On one thread,
    parts of whole channel blocks are NumPy byte copies instead (``concat_copy``)."""
    if p.axis != 1 or not be.keep_blocked or any(type(x) is not BlockedArray for x in parts):
        return None
    concat = concat_in_layout(be, p, parts)
    if concat is None:
        return None
    mds = [x.md for x in parts]  # the parts' own layouts (mixed ones: reordered)
    md_out, to_plain = concat.prim.mds[ARG_DST], concat.to_plain
    mixed = any(step is not None for step in concat.reorders)
    if not mixed and concat.tag == BLOCKED_TAG and copies_concat(p, be._threads_now):
        call = copied_concat(be, p, kernel, mds, md_out, to_plain)
    else:
        call = _concat_call(be, p, kernel, concat, mds, mixed)
    if mixed or concat.tag != BLOCKED_TAG:
        return call
    return in_place(be, p, parts, md_out, to_plain, call) or call


def _concat_call(be: Any, p: Any, kernel: Callable, concat: Any, mds: list[Any],
                 mixed: bool) -> Callable:
    """``blocked_concat``'s call on oneDNN's concat primitive (mixed layouts: the odd
    parts reordered first)."""
    md_out, to_plain, shape = concat.prim.mds[ARG_DST], concat.to_plain, tuple(p.shape)
    varying = (*(ARG_MULTIPLE_SRC + i for i in range(len(mds))), ARG_DST)
    run = BoundPrimitive(concat.prim, {}, varying).runner()
    new_out = _out_factory(be, md_out.size, np.uint8)
    sources = concat.bound_sources(be) if mixed else None

    def call(arrays):
        if not blocked_parts(arrays, mds):
            return kernel(p, arrays)
        out, a_out = new_out()
        if sources is None:
            run(*(address(x.buffer) for x in arrays), a_out)
        else:
            addresses, kept = sources(arrays)
            run(*addresses, a_out)
            del kept  # the reordered parts, read
        return _blocked(out, shape, md_out, to_plain)
    return call


def _eltwise_prim(alg: str) -> Callable[[Any, Any], Any]:
    from hwbench.backends.cpu.primitives import build_eltwise

    return lambda be, p: be._primitive(("eltwise", alg, p.size),
                                       lambda: build_eltwise(be.dnnl, alg, p.size))


def _pool(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    from hwbench.backends.cpu.primitives import build_pooling

    if kwargs or len(args) != 1:
        return None
    if p.kind == "avg" and p.count_include_pad and any(p.ceil_extra):
        return None  # rescaled after the primitive: the normal path's
    x = args[0]
    out_shape = tuple(p.output_shape)
    if type(x) is BlockedArray:
        pool = pool_in_layout(be, p, x)
        if not be.keep_blocked or pool is None:
            return None
        return blocked_call(be, pool.prim, pool.prim.mds[ARG_SRC], pool.prim.mds[ARG_DST],
                            out_shape, pool.to_plain, kernel, p)
    in_shape = (p.n, p.c, p.h, p.w)
    if not _is_plain(x, in_shape):
        return None
    prim = be._primitive(("pool", p), lambda: build_pooling(be.dnnl, p))
    return _plain_call(be, prim, in_shape, out_shape, kernel, p)


def _reshape(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    """A plain array's view of the new shape; or, after a convolution, the blocked
    activation reordered to NCHW (as ``CpuBackend._plain``), then that view."""
    if kwargs or len(args) != 1:
        return None
    x = args[0]
    if type(x) is _ndarray:  # a view, as np.reshape gives
        out_shape = tuple(p.shape)

        def view(x):
            if type(x) is not _ndarray:
                return kernel(p, x)
            return x.reshape(out_shape)
        if _is_plain(x, x.shape, x.dtype):  # float32, or an int8 graph's codes
            view.link = Link(None, plain(x.shape, x.dtype), plain(out_shape, x.dtype))
        return view
    if type(x) is not BlockedArray:
        return None
    md, shape, out_shape = x.md, tuple(x.shape), tuple(p.shape)
    if x._to_plain is None:  # a layout that is NCHW already (NHWC of one pixel): a view
        size = int(np.prod(shape))

        def plain_view(x):
            if type(x) is not BlockedArray or not (x.md is md or x.md == md) \
                    or x.shape != shape:
                return kernel(p, x)
            return x.buffer.reshape(-1).view(_F32)[:size].reshape(out_shape)
        return plain_view
    run = BoundPrimitive(x._to_plain, {}, (ARG_SRC, ARG_DST)).runner()
    new_out = _out_factory(be, shape)

    def call(x):
        if type(x) is not BlockedArray or not (x.md is md or x.md == md) \
                or x.shape != shape:
            return kernel(p, x)
        out, a_out = new_out()
        run(address(x.buffer), a_out)
        return out.reshape(out_shape)
    call.link = Link(run, blocked(md), plain(out_shape), binder(x._to_plain, {}))
    return call


def _blocked_binary(alg: str) -> Callable:
    """Mul/Add of a blocked activation and a blocked operand of its shape or a blocked
    per-channel gate (an SE block's scale, a residual join): the binary primitive
    ``CpuBackend._blocked_binary`` runs, bound once. Its lookups, checks and wrappers
    cost more than the primitive at batch 1: EfficientNet-B0's SE Mul (1, 96, 56, 56)
    took 33 µs in the primitive, 99 µs a step (one thread, CPU time)."""

    def build(be: Any, p: Any, kernel: Callable, args: tuple,
              kwargs: dict) -> Callable | None:
        from hwbench.backends.cpu.blocked_ops import BlockedBinary

        if kwargs or len(args) != 2 or not be.keep_blocked or len(p.shape) != 4:
            return None
        shape = tuple(p.shape)
        swap = not (type(args[0]) is BlockedArray and args[0].shape == shape)
        full, other = args[::-1] if swap else args
        # a constant per-channel operand (ConvNeXt's layer scale): its blocked copy, once
        const = type(other) is _ndarray and other in be.frozen and 1 <= other.ndim <= 4
        if type(full) is not BlockedArray or full.shape != shape or not const and (
                type(other) is not BlockedArray or len(other.shape) != 4):
            return None
        sb = (1,) * (4 - len(other.shape)) + tuple(other.shape)
        if sb != shape and (sb[1:] != (shape[1], 1, 1) or sb[0] not in (1, shape[0])):
            return None
        if const and sb == shape:
            return None
        op = be._primitive(("blocked_binary", alg, shape, sb),
                           lambda: BlockedBinary(be.dnnl, alg, shape, sb))
        md0, md1, md_out = (op.prim.mds[a] for a in (ARG_SRC, ARG_SRC_1, ARG_DST))
        if full.md != md0 or not const and other.md != md1:
            return None
        if const:
            return _blocked_constant(be, op, shape, sb, swap, other, md0, (kernel, p))
        run = BoundPrimitive(op.prim, {}, (ARG_SRC, ARG_SRC_1, ARG_DST)).runner()
        new_out = _out_factory(be, md_out.size, np.uint8)
        to_plain = op.to_plain

        def call(a, b):
            full, other = (b, a) if swap else (a, b)
            if type(full) is not BlockedArray or type(other) is not BlockedArray \
                    or not (full.md is md0 or full.md == md0) \
                    or not (other.md is md1 or other.md == md1):
                return kernel(p, a, b)
            out, a_out = new_out()
            run(address(full.buffer), address(other.buffer), a_out)
            return _blocked(out, shape, md_out, to_plain)
        return call
    return build


def _blocked_constant(be: Any, op: Any, shape: tuple[int, ...], sb: tuple[int, ...],
                      swap: bool, const: np.ndarray, md0: Any,
                      slow: tuple[Callable, Any]) -> Callable:
    """``_blocked_binary``'s call where the other operand is one constant per-channel
    array of broadcast shape ``sb``: its nChw16c copy (``BlockedOps._gate``) bound with
    the primitive once; ``slow`` (kernel, problem) takes any other operands."""
    gate = be._gate(const, op.prim.mds[ARG_SRC_1], sb)
    kernel, p = slow
    run = BoundPrimitive(op.prim, {ARG_SRC_1: gate}, (ARG_SRC, ARG_DST)).runner()
    md_out = op.prim.mds[ARG_DST]
    new_out, to_plain = _out_factory(be, md_out.size, np.uint8), op.to_plain

    def call(a, b):
        full, other = (b, a) if swap else (a, b)
        if other is not const or type(full) is not BlockedArray \
                or not (full.md is md0 or full.md == md0):
            return kernel(p, a, b)
        out, a_out = new_out()
        run(address(full.buffer), a_out)
        return _blocked(out, shape, md_out, to_plain)
    return call


BUILDERS: dict[str, Callable] = {
    "CpuBackend._mul": in_place_binary("binary_mul", _blocked_binary("binary_mul")),
    "CpuBackend._add": in_place_binary("binary_add", _blocked_binary("binary_add")),
    "CpuBackend._reshape": _reshape,
    "CpuBackend._conv2d": _conv,
    "CpuBackend._gemm": _gemm,
    "CpuBackend._relu": _blocked_relu,
    "CpuBackend._sigmoid": _flat(_eltwise_prim("eltwise_logistic")),
    "CpuBackend._softmax": prepared_softmax,
    "CpuBackend._pool": _pool,
}


def builder_for(kernel: Callable) -> Callable | None:
    """The fast-path builder for a bound cpu kernel method, or None."""
    fn = getattr(kernel, "__func__", None)
    return BUILDERS.get(getattr(fn, "__qualname__", ""))
