"""The opencl backend's fused LSTM kernels (``kernels/opencl/rnn.cl``), called by
``rnn_lowering`` where the cell has ONNX's default functions and no clip, peepholes or
input_forget: ``_lstm_cell``, one step's gates, cell update, sequence-end selects and Y
in one launch instead of ~20 elementwise ones (the GEMMs stay the backend's); and, for
small cells, ``_lstm_sequence``: a whole direction, recurrent products included, in one
launch of one work-group (the translator's encoder: 64 launches and their host work per
run -> 1)."""

from __future__ import annotations

from typing import Any

from hwbench.backends.opencl.gemm import i32

LOCAL = 64
SEQUENCE_LOCAL = 64
SEQUENCE_MAX_STATE = 4096  # batch x hidden at most: one work-group's worth of work
# lstm_sequence8 where seq x batch x this >= hidden (its weight transposition pays off;
# PoCL basic, hidden 32: one step at batch 1 9 us vector vs ~3 scalar, at batch 8 16 vs ~25)
VECTOR_CELLS_PER_WEIGHT = 5


class RnnKernelsOpencl:
    """``_lstm_cell`` and ``_lstm_sequence`` of ``OpenclBackend`` (see
    ``rnn_lowering.fused_lstm``)."""

    def _rnn_program(self) -> Any:
        return self.compiler.program("rnn", {}, {"lstm_cell": (LOCAL,),
                                                 "lstm_sequence": (SEQUENCE_LOCAL,),
                                                 "lstm_sequence8": (SEQUENCE_LOCAL,)})

    def _lstm_cell(self, xw: Any, row: int, hr: Any, hs: Any, cs: Any, mask: Any) -> tuple:
        """(Y_t, h, c) of one step: ``xw`` (T·B, 4H) every step's input projection,
        this step's rows from ``row``; ``hr`` (B, 4H) = h·Rᵀ; ``mask`` (B, 1) uint8 or
        None (every row live)."""
        batch, hidden = hs.shape
        y, h_out, c_out = (self._empty((batch, hidden)) for _ in range(3))
        self._rnn_program().launch(
            "lstm_cell", (batch * hidden,), i32(batch), i32(hidden), i32(row * 4 * hidden),
            self._buf(xw), self._buf(hr), self._buf(hs), self._buf(cs),
            self._buf(mask if mask is not None else hs), i32(mask is not None), y.data,
            h_out.data, c_out.data)
        return y, h_out, c_out

    def _lstm_sequence_fits(self, batch: int, hidden: int) -> bool:
        """Whether ``_lstm_sequence`` serves a cell this size: one work-group does all
        of it, so only small states (bigger ones run a step per launch, on every core)."""
        return batch * hidden <= SEQUENCE_MAX_STATE

    def _lstm_sequence(self, xw: Any, rk: Any, h0: Any, c0: Any, mask: Any,
                       reverse: bool) -> tuple:
        """(Y (T, B, H), h, c) of one direction: ``xw`` (T·B, 4H) the input projection,
        ``rk`` (4H, H) the recurrent weights, ``mask`` (T, B) uint8 or None."""
        batch, hidden = h0.shape
        seq = xw.shape[0] // batch
        y = self._empty((seq, batch, hidden))
        h_out, c_out = self._empty((batch, hidden)), self._empty((batch, hidden))
        hbuf = self._empty((2, batch, hidden))
        # eight cells a work-item where hidden allows and there are cells enough to pay
        # for transposing the weights into scratch (~4·hidden² copies; the scalar kernel
        # ~5x slower a cell): not the translator's batch-1 decoder step (one step, 32 cells)
        vector = hidden % 8 == 0 and seq * batch * VECTOR_CELLS_PER_WEIGHT >= hidden
        scratch = [self._empty((hidden, 4 * hidden)).data] if vector else []
        self._rnn_program().launch(
            "lstm_sequence8" if scratch else "lstm_sequence", (SEQUENCE_LOCAL,), i32(seq),
            i32(batch), i32(hidden), i32(reverse), self._buf(xw), self._buf(rk),
            self._buf(h0), self._buf(c0), self._buf(mask if mask is not None else h0),
            i32(mask is not None), hbuf.data, *scratch, y.data, h_out.data, c_out.data)
        return y, h_out, c_out

