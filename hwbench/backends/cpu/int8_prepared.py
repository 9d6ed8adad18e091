"""The int8 kernels a compiled plan replays with their per-call Python settled (issue 16).

``prepared_kernels`` does this for the float kernels; here the same ``BoundPrimitive``
replay serves the ``float32-requant`` mode's fused QLinearConv (``_qconv2d`` on a
channels-last activation) and MaxPool on 8-bit codes (``_max_pool2d_codes``), and Slice
and Gather of a channels-last array's channels (ShuffleNet's) replay their copy, chosen
once (``tensor_ops.channel_copier``). Built on
a node's first replay from the arguments it met: the cached primitive and packed
weights the normal path uses (same keys, same thread count: the same codes bit for bit),
the scales, zero points and float32 bias bound once. A replayed call only checks that
its input is the channels-last codes it was built for and the weights and parameters
are the same objects, swaps the source and destination addresses and executes; anything
else runs the kernel itself. MobileNet v2 has 52 such convolutions, ShuffleNet 56: the
dict-built memory objects of ``Primitive.execute`` cost ~20 µs each per run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu import int8_links
from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.bound_primitive import BoundPrimitive, binder
from hwbench.backends.cpu.bound_primitive import out_factory as _out_factory
from hwbench.backends.cpu.chain_links import Link, nhwc, plain
from hwbench.backends.cpu.float32_requant import as_int8, symmetric_zero_point
from hwbench.backends.cpu.int8_links import held as _codes_in  # channels-last codes
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, ARG_WEIGHTS
from hwbench.backends.cpu.primitives import build_pooling
from hwbench.backends.cpu.tensor_ops import channel_copier, channel_table


def _frozen(be: Any, *arrays: Any) -> bool:
    """Every array is None or frozen (it can never change under what was derived)."""
    return all(a is None or a in be.frozen for a in arrays)


def _pixel_codes_in(x: Any, shape: tuple[int, ...], dtype: np.dtype) -> bool:
    """A C-contiguous NCHW ``shape`` array of ``dtype`` codes whose images are one pixel:
    its bytes are the NHWC ones (an int8 model's fully connected layer, a 1x1 conv)."""
    return type(x) is np.ndarray and x.shape == shape and x.dtype == dtype \
        and x.flags.c_contiguous


def _qconv(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    """``_qconv2d`` in the ``float32-requant`` mode, channels-last in (or NCHW codes of one
    pixel, the same bytes) and out."""
    if kwargs or len(args) != 7 or be.requantization != "float32" or not be.keep_blocked:
        return None
    x, w, zx, zw, bias, fixed, zy = args
    x_dtype = np.dtype(p.x_dtype)
    in_shape = (p.n, p.h, p.w, p.c)
    pixel = (p.n, p.c, 1, 1) if p.h == p.w == 1 else None
    if not (_codes_in(x, in_shape, x_dtype) or pixel and _pixel_codes_in(x, pixel, x_dtype)) \
            or not _frozen(be, w, bias) or symmetric_zero_point(w.dtype, zw) is None:
        return None
    key, conv = be._qconv_primitive(p, zx, zy)
    if conv is None:
        return None
    packed = be._once_per_array(w, key, lambda w: conv.pack_weights(as_int8(w)))
    bound = {ARG_WEIGHTS: packed, **be._qconv_args(p, w, key, zx, bias, fixed, zy)}
    run = BoundPrimitive(conv.prim, bound, (ARG_SRC, ARG_DST)).runner()
    new_shape = (p.n, p.out_h, p.out_w, p.k)
    new_out = _out_factory(be, new_shape, zy.dtype)
    t_w, t_zx, t_zw, t_bias, t_fixed, t_zy = w, zx, zw, bias, fixed, zy

    def call(x, w, zx, zw, bias, fixed, zy):
        # ``is`` chained, not ``all()`` over a generator: ~1 µs a call, 52 calls a run
        if w is t_w and zx is t_zx and zw is t_zw and bias is t_bias and fixed is t_fixed \
                and zy is t_zy:
            if _codes_in(x, in_shape, x_dtype):
                src = address(x.nhwc)
            elif pixel and _pixel_codes_in(x, pixel, x_dtype):
                src = address(x)
            else:
                return kernel(p, x, w, zx, zw, bias, fixed, zy)
            out, a_out = new_out()
            run(src, a_out)
            return ChannelsLastArray(out)
        return kernel(p, x, w, zx, zw, bias, fixed, zy)
    call.kept = bound  # the bound buffers must outlive the call
    # for ``graph/chain.py``: the same conv from the codes' bytes into the output's
    src_kind = nhwc(in_shape, x_dtype) if type(x) is ChannelsLastArray else plain(pixel, x_dtype)
    call.link = Link(run, src_kind, nhwc(new_shape, zy.dtype), binder(conv.prim, bound))
    return call


def _max_pool_codes(be: Any, p: Any, kernel: Callable, args: tuple,
                    kwargs: dict) -> Callable | None:
    """``_max_pool2d_codes`` on channels-last codes."""
    if kwargs or len(args) != 1 or type(args[0]) is not ChannelsLastArray:
        return None
    dtype = np.dtype(args[0].dtype)
    in_shape = (p.n, p.h, p.w, p.c)
    if not _codes_in(args[0], in_shape, dtype):
        return None
    prim = be._primitive(("pool-codes", p, "acdb", dtype.str),
                         lambda: build_pooling(be.dnnl, p, "acdb", dtype))
    n, c, oh, ow = p.output_shape
    return int8_links.held_call(be, p, kernel, prim, in_shape, (n, oh, ow, c), dtype)


def _channels(be: Any, p: Any, kernel: Callable, args: tuple,
              kwargs: dict) -> Callable | None:
    """``_slice``/``_gather`` of a channels-last array's channels (ShuffleNet's shuffle
    and split of int8 codes): the copy chosen once."""
    if kwargs or len(args) != 1:
        return None
    table = channel_table(p, args[0])
    if table is None:
        return None
    dtype = np.dtype(args[0].dtype)
    in_shape = args[0].nhwc.shape
    copy = channel_copier(table, in_shape[3])
    new_out = _out_factory(be, in_shape[:3] + (table.size,), dtype)

    def call(x):
        if not _codes_in(x, in_shape, dtype):
            return kernel(p, x)
        out, _ = new_out()
        copy(x.nhwc, out)
        return ChannelsLastArray(out)
    return call


INT8_BUILDERS: dict[str, Callable] = {
    "Int8Kernels._qconv2d": _qconv,
    "Int8Kernels._quantize_linear": int8_links.quantize,
    "Int8Kernels._dequantize_linear": int8_links.dequantize,
    "Int8Kernels._max_pool2d_codes": _max_pool_codes,
    "TensorOpsKernels._slice": _channels,
    "TensorOpsKernels._take": _channels,
    "TensorOpsInterface._gather": _channels,
}
