"""The steps between an int8 graph's convolutions as bound oneDNN calls with a ``link``
(``chain_links``), so that ``graph/chain.py`` runs the digits models' and BEGAN's int8
graphs back to back as it runs their float32 ones (issue 16: mlp, LeNet and the
autoencoder in int8 are tens of µs a run, most of it each step's Python), all in the
``float32-requant`` mode (the exact mode keeps its kernels).

- QuantizeLinear of a plain float32 array, per tensor: the kernel's NumPy
  ``saturate(rint(x / scale) + zero_point)`` as one oneDNN binary division by the scale
  with a rounding and the zero point as post-ops, the codes written, saturated, in the
  output's type: the same float32 operations in the same order, so the same codes (the
  build compares them with the kernel's on the traced input; the tests on ties). The
  ``float32-requant`` mode's NCHW input to NHWC codes (the kernel's scaling reorder,
  after its transpose where there is one) binds those reorders.
- DequantizeLinear of plain codes, per tensor: a lookup in the 256 values the kernel's
  NumPy ``(q - zero_point) · scale`` gives (oneDNN's binary primitive with 8-bit sources
  ran its reference implementation here: 25 µs for 512 codes).
- Reshape of channels-last codes: of one pixel or channel, a view (NHWC bytes are
  NCHW's); else the transpose to NCHW as one reorder (the kernel's NumPy copy: the
  same bytes).
- Channels-last float32 activations between fused convs (BEGAN's): QuantizeLinear (the
  kernel's flat scaling reorder), eltwise ops and Sigmoid (its flat primitive), nearest
  Resize (``_resize_nhwc``), each bound with its link.

Each call checks that its input is the traced kind and its parameters the traced
objects, else runs the kernel itself, as ``prepared_kernels``' calls do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.bound_primitive import BoundPrimitive, binder, is_plain, out_factory
from hwbench.backends.cpu.chain_links import (
    Link,
    codes,
    nhwc,
    plain,
    reorder_then,
    table_bind,
    table_into,
)
from hwbench.backends.cpu.int8_tables import lookup
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.backends.cpu.onednn import (
    ARG_ATTR_SCALES,
    ARG_ATTR_ZERO_POINTS,
    ARG_DST,
    ARG_SRC,
    ARG_SRC_1,
    Primitive,
)
from hwbench.backends.cpu.primitives import reorder
from hwbench.errors import NativeLibraryError
from hwbench.kernels.quantization import dequantize as dequantize_codes

_F32 = np.dtype(np.float32)
_CODES = (np.dtype(np.uint8), np.dtype(np.int8))
_ndarray = np.ndarray


def _per_tensor(scale: Any, zero_point: Any) -> tuple[np.ndarray, int] | None:
    """(the scale as one float32 value, as NumPy's quantize reads it, the zero point) of
    per-tensor parameters with 8-bit codes, else None."""
    s, z = np.asarray(scale), np.asarray(zero_point)
    if s.size != 1 or z.size != 1 or z.dtype not in _CODES:
        return None
    return np.asarray(s, np.float32).reshape(1), int(z)


def build_quantize(d: Any, size: int, codes_dtype: np.dtype, zero: int) -> Primitive:
    """Float32 ``x / s`` (``s`` at ``ARG_SRC_1``), rounded to nearest even, plus ``zero``,
    saturated into codes: one binary primitive over ``size`` flat values."""
    one = d.memory_desc((1,), "f32", tag="a")
    src, dst = d.memory_desc((size,), "f32", tag="a"), d.memory_desc((size,), codes_dtype, tag="a")
    post = [("eltwise", "eltwise_round", 0.0, 0.0)]
    if zero:
        post.append(("eltwise", "eltwise_linear", 1.0, float(zero)))
    attr = d.attr(post_ops=post)
    pd = d.create_pd("dnnl_binary_primitive_desc_create", d.engine, d.alg["binary_div"],
                     src.handle, one.handle, dst.handle, attr.handle)
    return Primitive(d, pd, {ARG_SRC: src, ARG_SRC_1: one, ARG_DST: dst})


def _same(a: Any, b: Any) -> bool:
    a = a.nhwc if type(a) is ChannelsLastArray else a
    b = b.nhwc if type(b) is ChannelsLastArray else b
    return type(a) is type(b) is _ndarray and a.dtype == b.dtype and np.array_equal(a, b)


def _checked(fast: Callable, kernel: Callable, p: Any, args: tuple) -> Callable | None:
    """``fast`` where it gives the kernel's result on the traced arguments, else None."""
    return fast if _same(fast(*args), kernel(p, *args)) else None


def _traced(be: Any, args: tuple, kwargs: dict) -> tuple | None:
    """(x, scale, zero point, the scale as one float32, the zero point as an int) of a
    per-tensor (de)quantization in the ``float32-requant`` mode, else None."""
    if len(args) != 3 or kwargs or type(args[0]) is not _ndarray \
            or be.requantization != "float32":
        return None  # the exact mode keeps its kernels
    params = _per_tensor(args[1], args[2])
    return None if params is None else (*args, *params)


def quantize(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    """``Int8Kernels._quantize_linear``'s bound replay (see the module doc), or None."""
    if args and type(args[0]) is ChannelsLastArray:
        return _quantize_held(be, p, kernel, args, kwargs)
    traced = _traced(be, args, kwargs)
    if traced is None:
        return None
    x, t_scale, t_zero, s, z = traced
    shape, dtype = x.shape, np.asarray(t_zero).dtype
    if be.keep_blocked and x.ndim == 4 and x.dtype == _F32:
        return _quantize_nhwc(be, p, kernel, args, s, z)
    if not is_plain(x, shape):
        return None

    def build() -> Primitive | None:
        try:
            return build_quantize(be.dnnl, x.size, dtype, z)
        except NativeLibraryError:  # no implementation for these types here
            return None
    prim = be._primitive(("quantize-binary", x.size, dtype.str, z), build)
    if prim is None:
        return None
    fixed = {ARG_SRC_1: s}
    run = BoundPrimitive(prim, fixed, (ARG_SRC, ARG_DST)).runner()
    new_out = out_factory(be, shape, dtype)

    def call(x, scale, zero_point):
        if scale is not t_scale or zero_point is not t_zero or not is_plain(x, shape):
            return kernel(p, x, scale, zero_point)
        out, a_out = new_out()
        run(address(x), a_out)
        return out
    call.link = Link(run, plain(shape), codes(shape, dtype), binder(prim, fixed))
    return _checked(call, kernel, p, args)


def _quantize_held(be: Any, p: Any, kernel: Callable, args: tuple,
                   kwargs: dict) -> Callable | None:
    """QuantizeLinear of a channels-last float32 activation (BEGAN's int8 generator):
    the kernel's flat scaling reorder, bound."""
    x = args[0]
    traced = _traced(be, (x.nhwc, *args[1:]), kwargs)
    if traced is None or x.dtype != _F32 or not x.nhwc.flags.c_contiguous:
        return None
    src, t_scale, t_zero, s, z = traced
    shape, dtype = src.shape, np.asarray(t_zero).dtype
    _, prim = be._scaling_primitives("quantize", shape, _F32, dtype)
    fixed = {ARG_ATTR_SCALES | ARG_DST: s, ARG_ATTR_ZERO_POINTS | ARG_DST: np.full(1, z, np.int32)}
    run = BoundPrimitive(prim, fixed, (ARG_SRC, ARG_DST)).runner()
    new_out = out_factory(be, shape, dtype)

    def call(x, scale, zero_point):
        if scale is not t_scale or zero_point is not t_zero or not held(x, shape, _F32):
            return kernel(p, x, scale, zero_point)
        out, a_out = new_out()
        run(address(x.nhwc), a_out)
        return ChannelsLastArray(out)
    call.link = Link(run, nhwc(shape, _F32), nhwc(shape, dtype), binder(prim, fixed))
    return _checked(call, kernel, p, args)


def held(x: Any, shape: tuple[int, ...], dtype: np.dtype) -> bool:
    """A ``ChannelsLastArray`` of a C-contiguous NHWC ``shape`` buffer of ``dtype``."""
    if type(x) is not ChannelsLastArray:
        return False
    a = x.nhwc
    return a.shape == shape and a.dtype == dtype and a.flags.c_contiguous


def held_call(be: Any, p: Any, kernel: Callable, prim: Primitive, shape: tuple[int, ...],
              out_shape: tuple[int, ...], dtype: Any = _F32) -> Callable:
    """One-input ``prim`` on a channels-last activation of NHWC ``shape`` and ``dtype``
    into a fresh one of ``out_shape`` (an int8 graph's Elu, Resize between its fused
    convs; MaxPool on codes), with its link; any other input goes to ``kernel``."""
    dtype = np.dtype(dtype)
    run = BoundPrimitive(prim, {}, (ARG_SRC, ARG_DST)).runner()
    new_out = out_factory(be, out_shape, dtype)

    def call(x):
        if not held(x, shape, dtype):
            return kernel(p, x)
        out, a_out = new_out()
        run(address(x.nhwc), a_out)
        return ChannelsLastArray(out)
    call.link = Link(run, nhwc(shape, dtype), nhwc(out_shape, dtype), binder(prim, {}))
    return call


def _float_held(args: tuple, kwargs: dict) -> Any:
    """The one channels-last float32 argument of a call, or None."""
    x = args[0] if len(args) == 1 and not kwargs else None
    ok = type(x) is ChannelsLastArray and x.dtype == _F32 and x.nhwc.flags.c_contiguous
    return x if ok else None


def resize_held(be: Any, p: Any, kernel: Callable, args: tuple,
                kwargs: dict) -> Callable | None:
    """``_resize`` of a channels-last float32 activation where it is a nearest one
    (``_resize_nhwc``'s resampling), bound."""
    from hwbench.backends.cpu.upsampling import native_resampling

    x = _float_held(args, kwargs)
    if x is None or native_resampling(p) != "resampling_nearest":
        return None
    n, c, h, w = p.output_shape
    return held_call(be, p, kernel, be._resize_nhwc_primitive(p), x.nhwc.shape, (n, h, w, c))


def unary_held(be: Any, p: Any, kernel: Callable, args: tuple,
               kwargs: dict) -> Callable | None:
    """``_unary_op`` with a oneDNN eltwise algorithm on a channels-last float32
    activation: the kernel's flat primitive, bound."""
    from hwbench.backends.cpu.unary import ELTWISE, build_unary_eltwise

    x = _float_held(args, kwargs)
    if x is None or p.op not in ELTWISE:
        return None
    alg, params = ELTWISE[p.op]
    alpha, beta = params(p)
    prim = be._primitive(("unary", alg, p.size, alpha, beta),
                         lambda: build_unary_eltwise(be.dnnl, alg, p.size, alpha, beta))
    return held_call(be, p, kernel, prim, x.nhwc.shape, x.nhwc.shape)


def sigmoid_held(be: Any, p: Any, kernel: Callable, args: tuple,
                 kwargs: dict) -> Callable | None:
    """``_sigmoid`` (``_eltwise``) of a channels-last float32 activation: the kernel's
    flat primitive, bound (BEGAN's last step before its Clip)."""
    from hwbench.backends.cpu.prepared_kernels import _eltwise_prim

    x = _float_held(args, kwargs)
    if x is None:
        return None
    prim = _eltwise_prim("eltwise_logistic")(be, p)
    return held_call(be, p, kernel, prim, x.nhwc.shape, x.nhwc.shape)


def dequantize(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    """``Int8Kernels._dequantize_linear`` of plain codes: a lookup in the 256 values
    NumPy's ``dequantize`` gives every code (the kernel's own function: the same bits)."""
    traced = _traced(be, args, kwargs)
    if traced is None:
        return None
    x, t_scale, t_zero = traced[:3]
    shape, dtype = x.shape, x.dtype
    if dtype != np.asarray(t_zero).dtype or not is_plain(x, shape, dtype):
        return None
    table = dequantize_codes(np.arange(256, dtype=np.uint8).view(dtype), t_scale, t_zero)
    new_out = out_factory(be, shape, _F32)

    def call(x, scale, zero_point):
        if scale is not t_scale or zero_point is not t_zero or not is_plain(x, shape, dtype):
            return kernel(p, x, scale, zero_point)
        out, _ = new_out()
        lookup(table, x, out)
        return out
    call.link = Link(table_into(table, shape, dtype), codes(shape, dtype), plain(shape),
                     table_bind(table, shape, dtype))
    return _checked(call, kernel, p, args)


def _quantize_nhwc(be: Any, p: Any, kernel: Callable, args: tuple, s: np.ndarray,
                   z: int) -> Callable | None:
    """The ``float32-requant`` mode's NCHW float32 input to NHWC codes (``_scaling_reorder``
    with ``to_nhwc``): its transpose (where there is one) and scaling reorder, bound."""
    x, t_scale, t_zero = args
    shape, dtype = x.shape, np.asarray(t_zero).dtype
    n, c, h, w = shape
    transpose, prim = be._scaling_primitives("quantize", shape, _F32, dtype, to_nhwc=True)
    fixed = {ARG_ATTR_SCALES | ARG_DST: s, ARG_ATTR_ZERO_POINTS | ARG_DST: np.full(1, z, np.int32)}
    run = BoundPrimitive(prim, fixed, (ARG_SRC, ARG_DST)).runner()
    before = None
    if transpose is not None:
        before = (transpose, x.nbytes)
        run = reorder_then(BoundPrimitive(transpose, {}, (ARG_SRC, ARG_DST)).runner(), run,
                           x.nbytes)
    new_out = out_factory(be, (n, h, w, c), dtype)

    def call(x, scale, zero_point):
        if scale is not t_scale or zero_point is not t_zero or not is_plain(x, shape):
            return kernel(p, x, scale, zero_point)
        out, a_out = new_out()
        run(address(x), a_out)
        return ChannelsLastArray(out)
    call.link = Link(run, plain(shape), nhwc((n, h, w, c), dtype), binder(prim, fixed, before))
    return _checked(call, kernel, p, args)


def reshape_codes(be: Any, p: Any, kernel: Callable, args: tuple,
                  kwargs: dict) -> Callable | None:
    """``CpuBackend._reshape`` of channels-last codes: the NCHW array it returns, as a view
    (one pixel or one channel) or one bound NHWC -> NCHW reorder, then the reshape."""
    if kwargs or len(args) != 1 or type(args[0]) is not ChannelsLastArray:
        return None
    src = args[0].nhwc
    n, h, w, c = in_shape = src.shape
    dtype, out_shape = src.dtype, tuple(p.shape)
    if not src.flags.c_contiguous or dtype not in _CODES:
        return None

    def held(x: Any) -> bool:
        if type(x) is not ChannelsLastArray:
            return False
        a = x.nhwc
        return a.shape == in_shape and a.dtype == dtype and a.flags.c_contiguous

    if h * w == 1 or c == 1:  # the NHWC bytes are the NCHW ones
        def view(x):
            return x.nhwc.reshape(out_shape) if held(x) else kernel(p, x)
        view.link = Link(None, nhwc(in_shape, dtype), codes(out_shape, dtype))
        return view
    d = be.dnnl
    nchw = (n, c, h, w)
    prim = be._primitive(("nhwc-to-nchw", nchw, dtype.str), lambda: reorder(
        d, d.memory_desc(nchw, dtype, tag="acdb"), d.memory_desc(nchw, dtype, tag="abcd")))
    run = BoundPrimitive(prim, {}, (ARG_SRC, ARG_DST)).runner()
    new_out = out_factory(be, nchw, dtype)

    def call(x):
        if not held(x):
            return kernel(p, x)
        out, a_out = new_out()
        run(address(x.nhwc), a_out)
        return out.reshape(out_shape)
    call.link = Link(run, nhwc(in_shape, dtype), codes(out_shape, dtype), binder(prim, {}))
    return call
