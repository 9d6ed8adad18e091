"""A Gather whose indices are a graph input on the host, inside a recorded command list
(``recording``): its index table is the one command that depends on the indices' values.

``tensor_ops.take_layout`` makes that table on the host from the checked indices and
``_take`` uploads it; the kernel and its metadata follow from the layout. While a run is
recorded, ``gather`` notes which recorded upload holds the table and how to make it again
(``DerivedTable``); a replay then makes the table from that run's indices (the same
bounds check first) into the upload's host array, and runs the recorded commands as
they are, provided the new layout is the recorded one (the same kernel and metadata:
else that run goes back to the plan). The translator's decoder step at batch 8 (eight
token ids a step, seldom the same eight twice) runs recorded so, not just at batch 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.backends.opencl.tensor_ops import take_layout
from hwbench.errors import HwbenchError
from hwbench.kernels import spec


@dataclass
class DerivedTable:
    """One recorded upload of a Gather's index table: where its host data lives, the
    indices it was made from (a feed, by identity), and what else it must match."""

    source: np.ndarray  # the indices as the recorded run was given them
    x: Any  # Gather's data (a device array held by the recording): shape and dtype
    axis: int
    layout: tuple[Any, ...]  # (take shape, rows, metadata) of the recorded run
    host: np.ndarray  # the array the recorded upload copies from, rewritten per run

    def refill(self, indices: np.ndarray) -> bool:
        """The table for ``indices`` written into ``host``; False where these indices
        fail the check (the plan raises) or need another kernel or metadata."""
        try:
            p = spec.check_gather(self.x, indices, self.axis)
        except HwbenchError:
            return False
        take_shape, rows, meta, flat = take_layout(p)
        if (take_shape, rows, meta) != self.layout or flat.shape != self.host.shape:
            return False
        np.copyto(self.host, flat, casting="unsafe")
        return True


class GatherRecordingOpencl:
    """``gather`` of ``OpenclBackend``: as the shared one, and while a run is recorded,
    its index table's upload noted on the recorder (``Recorder.derived``)."""

    def gather(self, x: Any, indices: Any, axis: int = 0) -> Any:
        recorder = self.dev.recorder
        if recorder is None or not isinstance(indices, np.ndarray):
            return super().gather(x, indices, axis)
        first = len(recorder.calls)
        out = super().gather(x, indices, axis)
        p = spec.check_gather(x, indices, axis)
        take_shape, rows, meta, flat = take_layout(p)
        table = flat.astype(np.int32)
        for _, args, _ in recorder.calls[first:]:  # a copy's are (queue, dest, src)
            src = args[2] if len(args) == 3 else None
            if (isinstance(src, np.ndarray) and src.dtype == table.dtype
                    and src.shape == table.shape and np.array_equal(src, table)):
                recorder.derived.append(DerivedTable(indices, x, int(axis),
                                                     (take_shape, rows, meta), src))
                return out
        recorder.underived.append(indices)  # its upload not found: not replayable
        return out
