"""Prepared calls for the small plain-array kernels a step of a sequence model makes
(issue 16): batched ``_matmul``, ``_add``/``_mul`` with a broadcast operand, ``_concat``,
a one-primitive ``_rnn``, ``_transpose``, an eltwise ``_unary_op`` (of a blocked
convolution output too), ``_resize`` (a blocked one: ``blocked_resize``). The normal path
pays ~10–20 µs of checks and lookups a call for work of ~1 µs at batch 1 (the
translator's decoder step: two MatMuls, an Add, a Concat). Each builder binds the
primitive the normal path would look up (same key, same thread count: the same bits) or
keeps its NumPy fallback, decided once from the traced arguments; a call whose arguments
are not plain arrays of the traced shapes and dtypes runs the kernel itself."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.blocked_resize import blocked_resize
from hwbench.backends.cpu.bound_primitive import BoundPrimitive
from hwbench.backends.cpu.bound_primitive import is_plain as _is_plain
from hwbench.backends.cpu.bound_primitive import out_factory as _out_factory
from hwbench.backends.cpu.bound_primitive import plain_call as _plain_call
from hwbench.backends.cpu.channel_transpose import applies
from hwbench.backends.cpu.fixed_calls import (
    fixed_concat,
    fixed_numpy,
    fixed_primitive,
    fixed_swapped,
    fixed_transpose,
)
from hwbench.backends.cpu.layouts import BlockedArray
from hwbench.backends.cpu.onednn import (
    ARG_DST,
    ARG_MULTIPLE_SRC,
    ARG_SRC,
    ARG_SRC_1,
    ARG_WEIGHTS,
)
from hwbench.backends.cpu.prepared_kernels import BUILDERS, blocked_concat

_ndarray = np.ndarray


_plain = _is_plain  # (x, shape, dtype): read in place
_F32 = np.dtype(np.float32)


def _matmul(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    """``CpuBackend._matmul``'s primitive bound once; A, B and the output varying (in
    attention both operands are activations). A tiny one (``numpy_matmul``) is the
    kernel's ``np.matmul`` into this call site's own output."""
    from hwbench.backends.cpu.reductions import build_matmul, numpy_matmul

    if kwargs or len(args) != 2:
        return None
    a, b = args
    if type(a) is not _ndarray or type(b) is not _ndarray:
        return None
    sa, sb = a.shape, b.shape
    if not _plain(a, sa, _F32) or not _plain(b, sb, _F32):
        return None
    a_shape, b_shape = (*p.a_batch, p.m, p.k), (*p.b_batch, p.k, p.n)
    out_shape = (*p.batch, p.m, p.n)
    if numpy_matmul(p):
        new_host = _out_factory(be, tuple(p.output_shape))
        matmul = np.matmul
        if (sa, sb, tuple(p.output_shape)) == (a_shape, b_shape, out_shape):
            def numpy_call(a, b):  # the reshapes below would be no-ops (~0.5 µs a call)
                if not _plain(a, sa, _F32) or not _plain(b, sb, _F32):
                    return kernel(p, a, b)
                out = new_host()[0]
                matmul(a, b, out=out)
                return out
            numpy_call.fixed = fixed_numpy(matmul, (sa, sb), tuple(p.output_shape))
            return numpy_call

        def numpy_call(a, b):
            if not _plain(a, sa, _F32) or not _plain(b, sb, _F32):
                return kernel(p, a, b)
            out = new_host()[0]
            matmul(a.reshape(a_shape), b.reshape(b_shape), out=out.reshape(out_shape))
            return out
        numpy_call.fixed = fixed_numpy(matmul, (sa, sb), tuple(p.output_shape),
                                       (a_shape, b_shape, out_shape))
        return numpy_call
    prim = be._primitive(("matmul", a_shape, b_shape),
                         lambda: build_matmul(be.dnnl, a_shape, b_shape, out_shape))
    run = BoundPrimitive(prim, {}, (ARG_SRC, ARG_WEIGHTS, ARG_DST)).runner()
    new_out = _out_factory(be, tuple(p.output_shape))

    def call(a, b):
        if not _plain(a, sa, _F32) or not _plain(b, sb, _F32):
            return kernel(p, a, b)
        out, a_out = new_out()
        run(address(a), address(b), a_out)
        return out
    call.fixed = fixed_primitive(
        prim, lambda xs: {ARG_SRC: xs[0], ARG_WEIGHTS: xs[1], ARG_DST: xs[2]}
        if len(xs) == 3 and _plain(xs[0], sa, _F32) and _plain(xs[1], sb, _F32) else None,
        (tuple(p.output_shape),), lambda outs: outs[0])
    return call


# Below this many bytes of output a NumPy ufunc beats the binary primitive's ~2.5 µs of
# fixed cost a call (1x1x32: 0.8 against 7 µs; 1x256x256: 8 against 14, busy host), with
# the same bits: an IEEE float32 add or multiply is correctly rounded either way.
UFUNC_MAX_BYTES = 1 << 18


def _plain_binary(alg: str) -> Callable:
    """``CpuBackend._binary`` on two plain float32 arrays: the operand of the full shape
    first (the swap the kernel makes, decided once), the binary primitive bound, or a
    NumPy ufunc where oneDNN cannot broadcast (as the kernel) or the output is small."""

    def build(be: Any, p: Any, kernel: Callable, args: tuple,
              kwargs: dict) -> Callable | None:
        from hwbench.backends.cpu.primitives import build_binary

        if kwargs or len(args) != 2:
            return None
        a, b = args
        if type(a) is not _ndarray or type(b) is not _ndarray:
            return None
        shape_a, shape_b, shape = a.shape, b.shape, tuple(p.shape)
        if not _plain(a, shape_a, _F32) or not _plain(b, shape_b, _F32):
            return None
        rank = len(shape)
        sa = (1,) * (rank - a.ndim) + shape_a
        sb = (1,) * (rank - b.ndim) + shape_b
        swap = sa != shape
        if swap:
            sa, sb = sb, sa
        new_out = _out_factory(be, shape)
        if sa != shape or not 0 < rank <= onednn.MAX_NDIMS \
                or 4 * math.prod(shape) < UFUNC_MAX_BYTES:
            ufunc = np.add if alg == "binary_add" else np.multiply

            def numpy_call(a, b):
                if not _plain(a, shape_a, _F32) or not _plain(b, shape_b, _F32):
                    return kernel(p, a, b)
                out, _ = new_out()
                return ufunc(b, a, out=out) if swap else ufunc(a, b, out=out)
            numpy_call.fixed = (fixed_swapped if swap else fixed_numpy)(
                ufunc, (shape_a, shape_b), shape)
            return numpy_call
        prim = be._primitive(("binary", alg, shape, sb),
                             lambda: build_binary(be.dnnl, alg, shape, sb))
        run = BoundPrimitive(prim, {}, (ARG_SRC, ARG_SRC_1, ARG_DST)).runner()

        def call(a, b):
            if not _plain(a, shape_a, _F32) or not _plain(b, shape_b, _F32):
                return kernel(p, a, b)
            out, a_out = new_out()
            if swap:
                run(address(b), address(a), a_out)
            else:
                run(address(a), address(b), a_out)
            return out
        call.fixed = fixed_primitive(
            prim, lambda xs: {ARG_SRC: xs[swap], ARG_SRC_1: xs[1 - swap], ARG_DST: xs[2]}
            if len(xs) == 3 and _plain(xs[0], shape_a, _F32)
            and _plain(xs[1], shape_b, _F32) else None, (shape,), lambda outs: outs[0])
        return call
    return build


def _first_of(*builders: Callable) -> Callable:
    """A builder trying ``builders`` in turn (blocked operands, then plain ones)."""
    def build(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
        for builder in builders:
            call = builder(be, p, kernel, args, kwargs)
            if call is not None:
                return call
        return None
    return build


def _concat(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    """``CpuBackend._concat`` of plain arrays: ``np.concatenate`` into a fresh output
    below the kernel's size for oneDNN (or for other dtypes), else the bound primitive."""
    from hwbench.backends.cpu.primitives import CONCAT_MIN_BYTES, build_concat

    if kwargs or len(args) != 1 or not isinstance(args[0], (list, tuple)):
        return None
    parts = args[0]
    if parts and type(parts[0]) is not _ndarray:  # blocked activations: their own path
        return blocked_concat(be, p, kernel, parts)
    if not parts or any(type(x) is not _ndarray for x in parts):
        return None
    dtype = np.dtype(p.dtype)
    shapes = [x.shape for x in parts]
    if not all(_plain(x, s, dtype) for x, s in zip(parts, shapes, strict=True)):
        return None
    shape, axis, n = tuple(p.shape), p.axis, len(parts)
    new_out = _out_factory(be, shape, dtype)

    if n == 2:  # the usual join (the translator's [h, context]): no generator a call
        s0, s1 = shapes

        def same(arrays: Any) -> bool:
            return len(arrays) == 2 and _plain(arrays[0], s0, dtype) \
                and _plain(arrays[1], s1, dtype)
    else:
        def same(arrays: Any) -> bool:
            return len(arrays) == n and all(
                _plain(x, s, dtype) for x, s in zip(arrays, shapes, strict=True))
    if np.prod(shape) * dtype.itemsize < CONCAT_MIN_BYTES or dtype != _F32:
        def numpy_call(arrays):
            if not same(arrays):
                return kernel(p, arrays)
            out, _ = new_out()
            return np.concatenate(arrays, axis=axis, out=out)
        numpy_call.fixed = fixed_concat(tuple(shapes), shape, axis, dtype)
        return numpy_call
    prim = be._primitive(("concat", p), lambda: build_concat(be.dnnl, p))
    varying = (*(ARG_MULTIPLE_SRC + i for i in range(n)), ARG_DST)
    run = BoundPrimitive(prim, {}, varying).runner()

    def call(arrays):
        if not same(arrays):
            return kernel(p, arrays)
        out, a_out = new_out()
        run(*(address(x) for x in arrays), a_out)
        return out
    call.fixed = fixed_primitive(
        prim, lambda xs: {**{ARG_MULTIPLE_SRC + i: x for i, x in enumerate(xs[0])},
                          ARG_DST: xs[1]} if len(xs) == 2 and same(xs[0]) else None,
        (shape,), lambda outs: outs[0])
    return call




def _rnn(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    """``CpuBackend._rnn`` in its one-primitive case (oneDNN's cell, layout 0, no
    per-batch lengths, no peepholes, given initial states): the primitive bound to the
    converted weights the kernel uses, X and the states read in place, Y, Y_h (Y_c)
    fresh. A decoder step's LSTM spent ~100 µs of Python a call on the kernel's path."""
    from hwbench.backends.cpu import rnn

    if kwargs or len(args) != 7 or p.layout or p.lengths is not None:
        return None
    kind = rnn.native_kind(p)
    x, w, r, b, h0, c0, peep = args
    lstm = p.cell == "lstm"
    if kind is None or peep is not None or h0 is None or (c0 is None) == lstm \
            or p.cell not in ("lstm", "gru"):
        return None
    n, h, dirs = p.batch, p.hidden, p.directions
    x_shape, s_shape = (p.seq, n, p.input_size), (dirs, n, h)
    if not _plain(x, x_shape, _F32) or not _plain(h0, s_shape, _F32) \
            or lstm and not _plain(c0, s_shape, _F32):
        return None
    be.dnnl.set_num_threads(be._threads_now)  # the key the kernel's lookups use
    cell, lbr = p.cell, kind == "lbr_gru"
    fixed = {
        rnn.ARG_WEIGHTS_LAYER: be._once_per_array(w, ("rnn-ldigo", cell),
                                                  lambda v: rnn.to_ldigo(v, cell)),
        rnn.ARG_WEIGHTS_ITER: be._once_per_array(r, ("rnn-ldigo", cell),
                                                 lambda v: rnn.to_ldigo(v, cell)),
        rnn.ARG_BIAS: (np.zeros((1, dirs, 4 if lbr else p.gates, h), np.float32)
                       if b is None else
                       be._once_per_array(b, ("rnn-bias", cell, lbr),
                                          lambda v: rnn.to_ldgo_bias(v, cell, lbr))),
    }
    plain = rnn._span(p, p.seq)
    prim = be._primitive(("rnn", kind, plain.direction, plain.seq, plain.batch,
                          plain.input_size, plain.hidden, plain.activations[0],
                          plain.has_peepholes),
                         lambda: rnn.RnnPrimitive(be.dnnl, plain, kind)).prim
    varying = (rnn.ARG_SRC_LAYER, rnn.ARG_SRC_ITER, rnn.ARG_DST_LAYER, rnn.ARG_DST_ITER)
    if lstm:
        varying += (rnn.ARG_SRC_ITER_C, rnn.ARG_DST_ITER_C)
    if set(prim.mds) != {*fixed, *varying, onednn.ARG_SCRATCHPAD}:
        return None
    run = BoundPrimitive(prim, fixed, varying).runner()
    new_y = _out_factory(be, (p.seq, n, dirs * h))
    new_h, new_c = _out_factory(be, s_shape), _out_factory(be, s_shape)
    w0, r0, b0 = w, r, b
    y_shape = (p.seq, dirs, n, h)

    def call(x, w, r, b, h0, c0, peep):
        if w is not w0 or r is not r0 or b is not b0 or peep is not None \
                or not _plain(x, x_shape, _F32) or not _plain(h0, s_shape, _F32) \
                or (not _plain(c0, s_shape, _F32) if lstm else c0 is not None):
            return kernel(p, x, w, r, b, h0, c0, peep)
        y, a_y = new_y()
        yh, a_h = new_h()
        if lstm:
            yc, a_c = new_c()
            run(address(x), address(h0), a_y, a_h, address(c0), a_c)
        else:
            run(address(x), address(h0), a_y, a_h)
        if dirs == 1:  # (seq, n, h) is ONNX's (seq, 1, n, h) as it is: a view
            y_out = y.reshape(y_shape)
        else:
            y_out = np.ascontiguousarray(y.reshape(p.seq, n, dirs, h).transpose(0, 2, 1, 3))
        return (y_out, yh, yc) if lstm else (y_out, yh)
    if dirs == 1:  # every argument bound, Y as (seq, n, h): ONNX's view of it
        call.fixed = fixed_primitive(prim, lambda xs: _rnn_buffers(
            xs, (w0, r0, b0), (x_shape, s_shape), fixed, lstm),
            ((p.seq, n, h), s_shape) + ((s_shape,) if lstm else ()),
            lambda outs: (outs[0].reshape(y_shape), *outs[1:]))
    return call


def _rnn_buffers(xs: tuple, weights: tuple, shapes: tuple, fixed: dict,
                 lstm: bool) -> dict | None:
    """The one-primitive RNN's arguments, (x, w, r, b, h0, c0, peep) then the outputs
    (y, y_h, y_c), as ``_rnn``'s call binds them; None for any other kind."""
    from hwbench.backends.cpu import rnn

    x, w, r, b, h0, c0, peep, *outs = xs
    x_shape, s_shape = shapes
    if len(outs) != 2 + lstm or any(u is not v for u, v in zip((w, r, b), weights,
                                                                strict=True)) \
            or peep is not None or not _plain(x, x_shape, _F32) \
            or not _plain(h0, s_shape, _F32) \
            or (not _plain(c0, s_shape, _F32) if lstm else c0 is not None):
        return None
    args = {**fixed, rnn.ARG_SRC_LAYER: x, rnn.ARG_SRC_ITER: h0, rnn.ARG_DST_LAYER: outs[0],
            rnn.ARG_DST_ITER: outs[1]}
    if lstm:
        args.update({rnn.ARG_SRC_ITER_C: c0, rnn.ARG_DST_ITER_C: outs[2]})
    return args


def _transpose(be: Any, p: Any, kernel: Callable, args: tuple,
               kwargs: dict) -> Callable | None:
    """``CpuBackend._transpose`` of a plain activation (attention's head split and
    merge: 48 calls a GPT-2 run): the copy into a fresh output, the perm settled. A
    frozen weight keeps the kernel's path (its transposed copy is kept with it)."""
    if kwargs or len(args) != 1 or type(args[0]) is not _ndarray:
        return None
    x = args[0]
    shape, dtype = x.shape, x.dtype
    if x in be.frozen or not _plain(x, shape, dtype) or applies(be, p, x):
        return None  # a channel transpose: the kernel's one reorder (channel_transpose.py)
    perm, frozen = tuple(p.perm), be.frozen
    new_out = _out_factory(be, tuple(p.shape), dtype)

    def call(x):
        if not _plain(x, shape, dtype) or x in frozen:
            return kernel(p, x)
        out, _ = new_out()
        out[...] = x.transpose(perm)
        return out
    call.fixed = fixed_transpose(shape, dtype, perm, tuple(p.shape), frozen)
    return call


def _unary(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    """``CpuBackend._unary_op`` with a oneDNN eltwise algorithm (Tanh, Exp, Sqrt, Erf,
    ...) on a plain float32 array: the same cached primitive, bound. A convolution's
    blocked output (BEGAN's Elu) is first reordered to plain by its own reorder, as the
    kernel's ``_plain`` does: ~10 -> ~3 µs a call at BEGAN's batch 1."""
    from hwbench.backends.cpu.unary import ELTWISE, build_unary_eltwise

    if kwargs or len(args) != 1 or p.op not in ELTWISE:
        return None
    x = args[0]
    blocked = type(x) is BlockedArray and x._to_plain is not None
    if type(x) is not _ndarray and not blocked:
        return None
    shape = tuple(x.shape)
    if not blocked and not _plain(x, shape, _F32):
        return None
    alg, params = ELTWISE[p.op]
    alpha, beta = params(p)
    prim = be._primitive(("unary", alg, p.size, alpha, beta),
                         lambda: build_unary_eltwise(be.dnnl, alg, p.size, alpha, beta))
    if not blocked:
        return _plain_call(be, prim, shape, shape, kernel, p)
    run = BoundPrimitive(prim, {}, (ARG_SRC, ARG_DST)).runner()
    new_out = _out_factory(be, shape)
    md, to_plain = x.md, BoundPrimitive(x._to_plain, {}, (ARG_SRC, ARG_DST)).runner()
    new_src = _out_factory(be, shape)

    def from_blocked(x):
        if type(x) is not BlockedArray or not (x.md is md or x.md == md) \
                or x.shape != shape:
            return kernel(p, x)
        src, a_src = new_src()
        to_plain(address(x.buffer), a_src)
        out, a_out = new_out()
        run(a_src, a_out)
        return out
    return from_blocked


def _resize(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    """``CpuBackend._resize`` of a plain array: oneDNN's resampling primitive bound where
    the kernel uses it; elsewhere (a nearest Resize with ONNX's default
    round_prefer_floor: BEGAN's 2x upsampling, ~23 µs a call) the kernel's own float32
    arithmetic on the host tables (``upsampling_reference.resize_axis``: per axis and
    tap, a take times its weight, summed in tap order), the tables' index columns and
    float32 weights built once instead of on every call: the same bits."""
    from hwbench.backends.cpu.upsampling import build_resampling, native_resampling

    if kwargs or len(args) != 1 or not _plain(args[0], tuple(p.shape), _F32):
        return None
    shape, out_shape = tuple(p.shape), tuple(p.output_shape)
    alg = native_resampling(p)
    if alg is not None:
        prim = be._primitive(("resampling", alg, p.shape, p.output_shape),
                             lambda: build_resampling(be.dnnl, alg, p.shape, p.output_shape))
        return _plain_call(be, prim, shape, out_shape, kernel, p)
    if not p.tables or any(t.outside is not None for t in p.tables):
        return None
    rank = len(shape)
    axes = [(t.axis, [(np.ascontiguousarray(t.index[:, k]),
                       np.ascontiguousarray(t.weight[:, k].astype(np.float32)).reshape(
                           (1,) * t.axis + (t.out_len,) + (1,) * (rank - t.axis - 1)))
                      for k in range(t.taps)]) for t in p.tables]
    take = np.take

    def tables(x):
        if not _plain(x, shape, _F32):
            return kernel(p, x)
        for axis, taps in axes:
            out = None
            for index, weight in taps:
                term = take(x, index, axis=axis) * weight
                out = term if out is None else out + term
            x = out
        return np.ascontiguousarray(x, np.float32)
    return tables


PLAIN_BUILDERS: dict[str, Callable] = {
    "ReductionKernels._matmul": _matmul,
    "CpuBackend._add": _first_of(BUILDERS["CpuBackend._add"], _plain_binary("binary_add")),
    "CpuBackend._mul": _first_of(BUILDERS["CpuBackend._mul"], _plain_binary("binary_mul")),
    "CpuBackend._concat": _concat,
    "RnnKernelsCpu._rnn": _rnn,
    "CpuBackend._transpose": _transpose,
    "UnaryKernels._unary_op": _unary,
    "UpsamplingKernels._resize": _first_of(blocked_resize, _resize),
}
