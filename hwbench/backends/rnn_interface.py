"""The recurrent family's kernel interface: ``rnn(x, w, r, ..., cell=)`` for ONNX RNN, GRU
and LSTM (a mixin of ``Backend``). The default ``_rnn`` lowers the op onto the backend's
own GEMM and elementwise kernels (``rnn_lowering``), on its device; a backend with a
native recurrent primitive (cpu: oneDNN's) overrides ``_rnn`` where it applies."""

from __future__ import annotations

from typing import Any

from hwbench.backends.rnn_lowering import run_lowered
from hwbench.kernels import spec


class RnnKernels:
    """``rnn`` checks its arguments once for every backend, then calls ``_rnn``."""

    def rnn(self, x: Any, w: Any, r: Any, b: Any = None, sequence_lens: Any = None,
            initial_h: Any = None, initial_c: Any = None, p: Any = None, *,
            cell: str = "lstm", hidden_size: int | None = None, direction: str = "forward",
            layout: int = 0, activations: Any = None, activation_alpha: Any = None,
            activation_beta: Any = None, clip: float | None = None,
            input_forget: bool = False, linear_before_reset: bool = False) -> tuple:
        """ONNX RNN/GRU/LSTM (``cell`` "rnn", "gru" or "lstm") with the ONNX inputs and
        attributes: float32 device arrays x (T, B, I) (layout 1: (B, T, I)), w, r and the
        optional b, initial_h, initial_c, p; ``sequence_lens`` a host NumPy int array
        (None: every sequence has T steps). Returns (Y, Y_h) and for LSTM (Y, Y_h, Y_c):
        Y zero past each sequence's end, Y_h/Y_c at its last valid step."""
        arrays = dict(x=x, w=w, r=r, b=b, initial_h=initial_h, initial_c=initial_c, p=p)
        self._check_foreign("rnn", **arrays)
        problem = spec.check_rnn(
            x, w, r, b, sequence_lens, initial_h, initial_c, p, cell=cell,
            hidden_size=hidden_size, direction=direction, layout=layout,
            activations=activations, activation_alpha=activation_alpha,
            activation_beta=activation_beta, clip=clip, input_forget=input_forget,
            linear_before_reset=linear_before_reset)
        self._begin_kernel("rnn", problem)
        self._screen(f"rnn({cell!r})", **arrays)
        return self._rnn(problem, x, w, r, b, initial_h, initial_c, p)

    def _rnn(self, problem: spec.RnnProblem, x: Any, w: Any, r: Any, b: Any, initial_h: Any,
             initial_c: Any, p: Any) -> tuple:
        return run_lowered(self, problem, x, w, r, b, initial_h, initial_c, p)

    # built on the backend's GEMM and elementwise kernels: it has ``_rnn`` when it has those
    _rnn.runs_via = "_unary_op"  # type: ignore[attr-defined]
