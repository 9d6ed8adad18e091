"""A compiled plan's blocked Mul/Add written into its full-shape operand's own buffer,
where that operand dies at this step (issue 16: squeeze-and-excitation gates).

An SE block's gate Mul (EfficientNet's, MobileNet v3's) reads a (1, C, H, W) nChw16c
activation that nothing reads after it; written to a fresh pool buffer, its output costs
a second multi-megabyte stream of cache lines. oneDNN's binary primitive runs in place
(src0 = dst, same descriptor), bit for bit the same: at batch 1, one thread (CPU time,
busy VM, two sessions alternating in one process, ``scripts/in_place_ab.py``)
EfficientNet-B0 ran 1.4-3.8 % faster in six runs (13.98 -> 13.47 ms in the last),
MobileNet v3 (8 such Muls, smaller) 0.98-1.04x, within noise, in four; the SE Mul
primitive alone 196 -> 128 µs over B0's ten SE shapes, each once
(``scripts/se_block_ab.py``).

Two checks make it safe. The plan says which arguments' values it drops after the step
(``Plan._compile`` sets the prepared call's ``dying``, which ``prepared.prepared_call``
hands the builder through ``BUILDING``, per thread). Each call then checks that nothing
else holds the memory (``exclusive``): the operand is referenced only by the plan's
local and this call, and its buffer is a ``BufferPool`` buffer viewed by nobody else (no
Reshape view, no concat slice, no alias). Otherwise the call writes a fresh buffer as
before; so does the first replay, which builds the call (its ``*args`` hold the operand),
and a call through any wrapper (``scripts/per_node_vs_onnxruntime.py``'s timers).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.blocked_ops import BlockedBinary
from hwbench.backends.cpu.bound_primitive import BoundPrimitive
from hwbench.backends.cpu.bound_primitive import blocked_result as _blocked
from hwbench.backends.cpu.layouts import BlockedArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, ARG_SRC_1

_refcount = sys.getrefcount
# References to a dying operand inside ``exclusive`` as the plan calls it: the plan's
# local, the call's parameter and its local, this function's parameter, getrefcount's
# argument. Any alias (an Identity's local, a list; the first replay's ``*args`` tuple)
# adds one; tests/test_binary_in_place.py checks both ways.
OPERAND_REFS = 5
# References to its buffer's memory owner: the pool's view, the operand's buffer, the
# local ``owner`` and getrefcount's argument.
OWNER_REFS = 4
ENABLED = True  # a switch for A/B measurements and tests
# ``dying``: the positions of the arguments the plan drops after the call whose fast path
# this thread is building (``prepared.prepared_call`` sets it around the build)
BUILDING = threading.local()


def exclusive(be: Any, full: BlockedArray) -> bool:
    """Whether ``full``'s memory is this call's alone to overwrite (see the module)."""
    if _refcount(full) != OPERAND_REFS:
        return False
    owner = full.buffer.base
    return owner is not None and _refcount(owner) == OWNER_REFS \
        and be._buffers.holds(full.buffer)


def in_place_binary(alg: str, builder: Callable) -> Callable:
    """``builder`` (``prepared_kernels._blocked_binary(alg)``) whose call writes into
    the full-shape blocked operand where the plan drops it after this step and nothing
    else holds its memory; ``builder``'s call for everything else."""

    def build(be: Any, p: Any, kernel: Callable, args: tuple,
              kwargs: dict) -> Callable | None:
        call = builder(be, p, kernel, args, kwargs)
        dying = getattr(BUILDING, "dying", ())
        if call is None or not ENABLED or not dying:
            return call
        shape = tuple(p.shape)
        swap = not (type(args[0]) is BlockedArray and args[0].shape == shape)
        full, other = args[::-1] if swap else args
        if (1 if swap else 0) not in dying or type(other) is not BlockedArray:
            return call  # a constant operand (layer scale) is bound by ``builder``
        sb = (1,) * (4 - len(other.shape)) + tuple(other.shape)
        op = be._primitive(("blocked_binary", alg, shape, sb),
                           lambda: BlockedBinary(be.dnnl, alg, shape, sb))
        md0, md1, md_out = (op.prim.mds[a] for a in (ARG_SRC, ARG_SRC_1, ARG_DST))
        if md_out != md0 or full.md != md0 or other.md != md1:
            return call
        run = BoundPrimitive(op.prim, {}, (ARG_SRC, ARG_SRC_1, ARG_DST)).runner()
        to_plain = op.to_plain

        def into(a, b):
            full, other = (b, a) if swap else (a, b)
            if type(full) is not BlockedArray or type(other) is not BlockedArray \
                    or not (full.md is md0 or full.md == md0) \
                    or not (other.md is md1 or other.md == md1) or not exclusive(be, full):
                return call(a, b)
            at = address(full.buffer)
            run(at, address(other.buffer), at)
            return _blocked(full.buffer, shape, md_out, to_plain)
        return into
    return build
