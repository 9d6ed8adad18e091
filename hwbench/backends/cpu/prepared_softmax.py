"""The prepared Softmax of a blocked activation (issue 16): a classifier head whose
GlobalAveragePool keeps its output in nChw16c (SqueezeNet's (1, 1000, 1, 1)) ran
Softmax's whole kernel path, a reorder to NCHW through the kernel's lookups and
checks: 60–77 µs a call against onnxruntime's ~10 (one thread, busy VM). Bound here:
the reorder and the softmax primitive of the normal path (same bits); an activation of
one pixel and one image in nChw16c is already NCHW in its buffer's first ``c`` floats,
so the softmax reads it where it lies, with no reorder at all."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.bound_primitive import BoundPrimitive, is_plain, out_factory, plain_call
from hwbench.backends.cpu.layouts import BLOCKED_TAG, BlockedArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC


def softmax_primitive(be: Any, p: Any) -> Any:
    """The cached softmax primitive of the normal path: ``p.shape`` as (outer, axis,
    inner), plain."""
    from hwbench.backends.cpu.primitives import build_softmax

    dims = (math.prod(p.shape[:p.axis]), p.shape[p.axis], math.prod(p.shape[p.axis + 1:]))
    return be._primitive(("softmax", dims), lambda: build_softmax(be.dnnl, dims))


def prepared_softmax(be: Any, p: Any, kernel: Callable, args: tuple,
                     kwargs: dict) -> Callable | None:
    """``_softmax`` of a plain array (the primitive bound) or of a ``BlockedArray``
    (its reorder to NCHW and the primitive bound; none for one pixel of one image in
    nChw16c); anything else, or another layout on a later call, runs the kernel."""
    shape = tuple(p.shape)
    if kwargs or len(args) != 1:
        return None
    x = args[0]
    if type(x) is not BlockedArray:
        if not is_plain(x, shape):
            return None
        return plain_call(be, softmax_primitive(be, p), shape, shape, kernel, p)
    if not be.keep_blocked or x._to_plain is None or tuple(x.shape) != shape:
        return None
    md = x.md
    softmax = BoundPrimitive(softmax_primitive(be, p), {}, (ARG_SRC, ARG_DST)).runner()
    new_out = out_factory(be, shape)
    direct = len(shape) == 4 and shape[0] * shape[2] * shape[3] == 1 and md == be._primitive(
        ("blocked_md", shape), lambda: be.dnnl.memory_desc(shape, "f32", tag=BLOCKED_TAG))
    to_plain = None if direct else BoundPrimitive(x._to_plain, {}, (ARG_SRC, ARG_DST)).runner()
    new_plain = None if direct else out_factory(be, shape)

    def call(x):
        if type(x) is not BlockedArray or not (x.md is md or x.md == md):
            return kernel(p, x)
        out, a_out = new_out()
        if direct:  # channel c at float c: the NCHW array is the buffer's prefix
            softmax(address(x.buffer), a_out)
            return out
        plain, a_plain = new_plain()
        to_plain(address(x.buffer), a_plain)
        softmax(a_plain, a_out)
        return out
    return call
