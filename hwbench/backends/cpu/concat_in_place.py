"""Convolutions that write straight into the channel Concat reading them (issue 16).

At batch 1 in nChw16c, a channel slice of whole 16-channel blocks is a contiguous,
dense nChw16c array of its own: SqueezeNet's fire modules concatenate two convs' outputs
(64+64 channels at 55×55, ... 256+256 at 13×13), so each conv can write its part of the
concat's buffer and the concat copies nothing (it was 0.36 ms of a 7.4 ms SqueezeNet on
one thread, busy VM; oneDNN 3.2's convolutions cannot write a strided sub-memory: its
reference kernel).

How, in a compiled plan: a prepared blocked conv (``prepared_kernels._conv``) takes its
output buffer from a one-item ``target`` list and, on its first replay, registers that
list under its output buffer (``register``). The concat's builder, on its first replay,
finds each part's producer there and, where every condition holds, points the
producers' targets at slots of one shared buffer: the first producer in plan order
takes a fresh buffer of the concat's size from the pool each run, the others write at
their offsets, and the concat returns that buffer once it has checked that each part
lies exactly at its offset in it (else it copies, as before). A producer that falls
back to its kernel finds no shared buffer and allocates its own. Values are the
convolutions' own: the same bits as a copy.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.bound_primitive import blocked_result, out_factory
from hwbench.backends.cpu.layouts import BLOCKED_TAG, BlockedArray

BLOCK = 16  # nChw16c's channel block
_order = itertools.count()  # registration order: plan order within one replay


def register(be: Any, buffer: np.ndarray, target: list) -> None:
    """Remember that ``buffer`` came from ``target[0]()`` (a prepared conv's output
    source); weakly, so that the buffer goes back to the pool as usual, and only while
    it lives (entries of buffers gone are dropped here: a plan's first replay leaves
    few)."""
    producers = be.__dict__.setdefault("_concat_producers", {})
    for key in [key for key, entry in producers.items() if entry[0]() is None]:
        del producers[key]
    producers[id(buffer)] = (weakref.ref(buffer), target, next(_order))


def _producer(be: Any, x: Any) -> tuple[list, int] | None:
    entry = be.__dict__.get("_concat_producers", {}).get(id(getattr(x, "buffer", None)))
    if entry is None or entry[0]() is not x.buffer:
        return None
    return entry[1], entry[2]


def in_place(be: Any, p: Any, parts: list[BlockedArray], md_out: Any, to_plain: Any,
             copy: Callable) -> Callable | None:
    """The concat's prepared call with its producers writing into its buffer, or None
    where that does not hold: batch 1, every part nChw16c of whole blocks but the last,
    each from its own prepared conv whose output source is not redirected yet.
    ``copy``: the concat's call otherwise (parts not where they should be)."""
    if p.axis != 1 or p.shape[0] != 1 or any(s[1] % BLOCK for s in p.shapes[:-1]):
        return None
    for x in parts:
        md = be._primitive(("blocked_md", tuple(x.shape), BLOCKED_TAG),
                           lambda x=x: be.dnnl.memory_desc(tuple(x.shape), "f32",
                                                           tag=BLOCKED_TAG))
        if x.md != md:
            return None
    producers = [_producer(be, x) for x in parts]
    if None in producers or len({id(t) for t, _ in producers}) != len(parts) \
            or any(getattr(t[0], "redirected", False) for t, _ in producers):
        return None
    sizes = [x.md.size for x in parts]
    if sum(sizes) != md_out.size:
        return None
    offsets = np.cumsum([0, *sizes[:-1]]).tolist()
    new_buffer = out_factory(be, md_out.size, np.uint8)
    cell: list[Any] = [None]  # (buffer, address) of this run's concat
    first = min(range(len(parts)), key=lambda k: producers[k][1])
    for k, (target, _) in enumerate(producers):
        target[0] = _slot(cell, new_buffer if k == first else None, target[0],
                          offsets[k], sizes[k])
    starts = list(zip(offsets, sizes, strict=True))
    shape = tuple(p.shape)

    def call(arrays):
        shared, cell[0] = cell[0], None
        if shared is not None and len(arrays) == len(starts) and all(
                type(x) is BlockedArray and x.buffer.nbytes == size
                and address(x.buffer) == shared[1] + start
                for x, (start, size) in zip(arrays, starts, strict=True)):
            return blocked_result(shared[0], shape, md_out, to_plain)
        call.copies += 1
        return copy(arrays)
    call.copies = 0  # for tests: the runs that copied after all
    return call


def _slot(cell: list, new_buffer: Callable | None, own: Callable, offset: int,
          size: int) -> Callable[[], tuple[np.ndarray, int]]:
    """A producer's output source: its part of this run's shared buffer (the first
    producer allocates it), or its own buffer where no shared one is there."""
    def slot() -> tuple[np.ndarray, int]:
        if new_buffer is not None:
            cell[0] = new_buffer()
        elif cell[0] is None:
            return own()
        buffer, at = cell[0]
        return buffer[offset:offset + size], at + offset
    slot.redirected = True
    return slot
