"""A channel concat of nChw16c activations as byte copies (issue 16).

In nChw16c each image's channels come in whole blocks of 16, each block a contiguous
H·W·16 floats: when every part but the last has a multiple of 16 channels, the
concat's output per image is the parts' per-image bytes one after the other (the last
part's padding channels, zero, become the output's). NumPy's copies do that at memcpy
speed; oneDNN's ``simple:any`` concat took 1.7–2× as long on one thread (SqueezeNet's
fire modules, 2-core Zen 4, CPU time, busy: (1, 64+64, 55, 55) 56 against 34 µs,
(1, 192+192, 13, 13) 10 against 5 µs). On more threads oneDNN's parallel copies stay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu.bound_primitive import blocked_parts, blocked_result, out_factory

BLOCK = 16  # nChw16c's channel block


def copies_concat(p: Any, threads: int) -> bool:
    """Whether a blocked channel concat of ``p`` runs as byte copies: on one thread,
    every part but the last a whole number of channel blocks."""
    return threads == 1 and p.axis == 1 and all(
        shape[1] % BLOCK == 0 for shape in p.shapes[:-1])


def copied_concat(be: Any, p: Any, kernel: Callable, mds: list[Any], md_out: Any,
                  to_plain: Any) -> Callable:
    """The prepared concat of blocked parts of layouts ``mds`` into ``md_out``'s: each
    part's bytes copied to its offset in each image; parts of other layouts run the
    kernel."""
    n = p.shape[0]
    sizes = [md.size // n for md in mds]  # bytes per image, padding included
    offsets = np.cumsum([0, *sizes]).tolist()
    new_out = out_factory(be, md_out.size, np.uint8)
    shape = tuple(p.shape)

    def call(arrays):
        if not blocked_parts(arrays, mds):
            return kernel(p, arrays)
        out, _ = new_out()
        images = out.reshape(n, -1)
        for x, size, start in zip(arrays, sizes, offsets, strict=False):
            images[:, start:start + size] = x.buffer.reshape(-1).view(np.uint8)[
                :n * size].reshape(n, size)
        return blocked_result(out, shape, md_out, to_plain)
    return call
