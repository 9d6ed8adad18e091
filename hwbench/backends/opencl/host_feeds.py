"""A Gather whose indices are a graph input on the host, inside a recorded command list
(``recording``): its index table is the one command that depends on the indices' values.
Likewise an LSTM's host ``sequence_lens``: its sequence-end masks (``DerivedMasks``).

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


@dataclass
class DerivedMasks:
    """A recorded upload of an LSTM's sequence-end masks (``rnn_lowering``: (T, B)
    uint8, step t live where t < length) made from its ``sequence_lens`` feed; ``host``
    None where the recorded lengths were all full (no masks: they must stay so)."""

    source: np.ndarray
    seq: int
    host: np.ndarray | None

    def refill(self, lengths: np.ndarray) -> bool:
        """The masks for ``lengths`` written into ``host``; False where they are out of
        range (the plan raises) or change whether there are masks at all."""
        if (lengths.shape != self.source.shape or lengths.dtype.kind not in "iu"
                or np.any(lengths < 1) or np.any(lengths > self.seq)):
            return False
        full = bool(np.all(lengths == self.seq))
        if self.host is None or full:
            return self.host is None and full
        np.copyto(self.host, np.arange(self.seq)[:, None] < lengths[None, :],
                  casting="unsafe")
        return True


def _uploads(recorder: Any, first: int, like: np.ndarray) -> list[np.ndarray]:
    """The host arrays of the copies recorded since call ``first`` that hold ``like``."""
    return [args[2] for _, args, _ in recorder.calls[first:]  # a copy's: (queue, dest, src)
            if len(args) == 3 and isinstance(args[2], np.ndarray)
            and args[2].dtype == like.dtype and args[2].shape == like.shape
            and np.array_equal(args[2], like)]


class HostFeedsRecordingOpencl:
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
        found = _uploads(recorder, first, flat.astype(np.int32))
        if found:
            recorder.derived.append(DerivedTable(indices, x, int(axis),
                                                 (take_shape, rows, meta), found[0]))
        else:
            recorder.underived.append(indices)  # its upload not found: not replayable
        return out

    def rnn(self, x: Any, w: Any, r: Any, b: Any = None, sequence_lens: Any = None,
            *args: Any, **kwargs: Any) -> tuple:
        """As the shared ``rnn``; while a run is recorded, the uploads of the sequence-end
        masks made from a host ``sequence_lens`` noted on the recorder (every one: a
        bidirectional cell uploads them per direction)."""
        recorder = self.dev.recorder
        if recorder is None or not isinstance(sequence_lens, np.ndarray):
            return super().rnn(x, w, r, b, sequence_lens, *args, **kwargs)
        first = len(recorder.calls)
        out = super().rnn(x, w, r, b, sequence_lens, *args, **kwargs)
        seq = int(x.shape[1 if kwargs.get("layout", 0) else 0])
        if np.all(sequence_lens == seq):  # no masks made, none uploaded
            recorder.derived.append(DerivedMasks(sequence_lens, seq, None))
            return out
        masks = (np.arange(seq)[:, None] < sequence_lens[None, :]).astype(np.uint8)
        found = _uploads(recorder, first, masks)
        recorder.derived += [DerivedMasks(sequence_lens, seq, host) for host in found]
        if not found:
            recorder.underived.append(sequence_lens)
        return out
