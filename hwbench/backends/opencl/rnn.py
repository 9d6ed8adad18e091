"""The opencl backend's fused LSTM step (``kernels/opencl/rnn.cl``), called by
``rnn_lowering`` where the cell has ONNX's default functions and no clip, peepholes or
input_forget: the gates, the cell update, the sequence-end selects and the step's Y in
one launch instead of ~20 elementwise ones (the GEMMs stay the backend's)."""

from __future__ import annotations

from typing import Any

from hwbench.backends.opencl.gemm import i32

LOCAL = 64


class RnnKernelsOpencl:
    """``_lstm_cell`` of ``OpenclBackend`` (see ``rnn_lowering.fused_lstm``)."""

    def _lstm_cell(self, xw: Any, row: int, hr: Any, hs: Any, cs: Any, mask: Any) -> tuple:
        """(Y_t, h, c) of one step: ``xw`` (T·B, 4H) every step's input projection,
        this step's rows from ``row``; ``hr`` (B, 4H) = h·Rᵀ; ``mask`` (B, 1) uint8 or
        None (every row live)."""
        batch, hidden = hs.shape
        y, h_out, c_out = (self._empty((batch, hidden)) for _ in range(3))
        prog = self.compiler.program("rnn", {}, {"lstm_cell": (LOCAL,)})
        prog.launch("lstm_cell", (batch * hidden,), i32(batch), i32(hidden),
                    i32(row * 4 * hidden), self._buf(xw), self._buf(hr), self._buf(hs),
                    self._buf(cs), self._buf(mask if mask is not None else hs),
                    i32(mask is not None), y.data, h_out.data, c_out.data)
        return y, h_out, c_out
