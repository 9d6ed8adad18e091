"""Recurrent nets: one kernel, ``rnn(x, w, r, b, sequence_lens, initial_h, initial_c, p,
cell=...)``, for ONNX RNN, GRU and LSTM (opsets 14-22).

``check_rnn`` validates a call (shapes of every input against ``hidden_size``, the
direction, layout, activations with their alpha/beta, clip, input_forget,
linear_before_reset) and returns an ``RnnProblem``: the sizes, the resolved activations
(one ``RnnActivation`` per function per direction) and the per-batch sequence lengths.

Gate order is ONNX's: LSTM i, o, f, c (peepholes i, o, f); GRU z, r, h; RNN one gate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.kernels.spec.arguments import FLOAT32, array_shape, check_dtype, check_rank

CELLS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
DEFAULT_ACTIVATIONS = {"rnn": ("tanh",), "gru": ("sigmoid", "tanh"),
                       "lstm": ("sigmoid", "tanh", "tanh")}
DIRECTIONS = ("forward", "reverse", "bidirectional")

# ONNX's activation names (lower case) -> the defaults of (alpha, beta) each takes:
#   affine a·x + b, leakyrelu x<0 ? a·x : x, thresholdedrelu x>a ? x : 0,
#   scaledtanh a·tanh(b·x), hardsigmoid max(0, min(1, a·x + b)), elu x<0 ? a(eˣ−1) : x,
#   softsign x/(1+|x|), softplus log(1+eˣ)
RNN_ACTIVATIONS: dict[str, tuple[float, ...]] = {
    "relu": (), "tanh": (), "sigmoid": (), "affine": (1.0, 0.0), "leakyrelu": (0.01,),
    "thresholdedrelu": (1.0,), "scaledtanh": (1.0, 1.0), "hardsigmoid": (0.2, 0.5),
    "elu": (1.0,), "softsign": (), "softplus": (),
}
_FLOPS = {"relu": 1, "tanh": 1, "sigmoid": 4, "affine": 2, "leakyrelu": 2,
          "thresholdedrelu": 1, "scaledtanh": 3, "hardsigmoid": 4, "elu": 3, "softsign": 3,
          "softplus": 3}


@dataclass(frozen=True)
class RnnActivation:
    """One activation function with its parameters resolved (0.0 where it takes none)."""

    name: str
    alpha: float = 0.0
    beta: float = 0.0


@dataclass(frozen=True)
class RnnProblem:
    """One RNN/GRU/LSTM call: ``seq`` steps of ``batch`` rows of ``input_size`` values,
    ``hidden`` units per direction, ``directions`` 1 or 2. ``activations`` holds
    ``len(DEFAULT_ACTIVATIONS[cell])`` functions per direction, forward's first.
    ``lengths``: each batch entry's sequence length, or None when all are ``seq``."""

    cell: str
    seq: int
    batch: int
    input_size: int
    hidden: int
    direction: str
    layout: int
    activations: tuple[RnnActivation, ...]
    clip: float | None
    input_forget: bool
    linear_before_reset: bool
    has_bias: bool
    has_peepholes: bool
    has_initial_h: bool
    has_initial_c: bool
    lengths: tuple[int, ...] | None

    @property
    def directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    @property
    def y_shape(self) -> tuple[int, ...]:
        if self.layout:
            return (self.batch, self.seq, self.directions, self.hidden)
        return (self.seq, self.directions, self.batch, self.hidden)

    @property
    def state_shape(self) -> tuple[int, ...]:
        if self.layout:
            return (self.batch, self.directions, self.hidden)
        return (self.directions, self.batch, self.hidden)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.y_shape

    @property
    def default_activations(self) -> bool:
        """The cell's default functions (no parameters) in every direction."""
        names = DEFAULT_ACTIVATIONS[self.cell] * self.directions
        return tuple(a.name for a in self.activations) == names

    def activation(self, direction: int, index: int) -> RnnActivation:
        return self.activations[direction * len(DEFAULT_ACTIVATIONS[self.cell]) + index]

    @property
    def flops(self) -> int:
        g, h, d = self.gates, self.hidden, self.directions
        steps = self.seq * self.batch * d
        gemm = 2 * steps * g * h * (self.input_size + h)
        act = sum(_FLOPS[a.name] for a in self.activations) // d
        pointwise = {"rnn": 2, "gru": 8, "lstm": 10}[self.cell] + act * g
        return gemm + steps * h * pointwise

    @property
    def region_flops(self) -> int:
        """The work of one time step: oneDNN's cell meets its threads at every step, so
        a step, not the sequence, is what pays for a second thread (the translator's
        encoder at batch 8, 7 MFLOP in 32 steps of 0.2, ran on 2 spinning threads:
        on a busy 2-core machine a median of 9 ms a translation, 0.7 ms on one)."""
        return self.flops // self.seq

    @property
    def output_bytes(self) -> int:
        states = (2 if self.cell == "lstm" else 1) * math.prod(self.state_shape)
        return 4 * (math.prod(self.y_shape) + states)

    @property
    def bytes(self) -> int:
        g, h, d = self.gates, self.hidden, self.directions
        weights = d * g * h * (self.input_size + h + 2)
        return 4 * (self.seq * self.batch * self.input_size + weights) + self.output_bytes


def _activations(cell: str, directions: int, names: Any, alphas: Any, betas: Any,
                 where: str) -> tuple[RnnActivation, ...]:
    count = len(DEFAULT_ACTIVATIONS[cell])
    if names is None:
        names = DEFAULT_ACTIVATIONS[cell] * directions
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise ArgumentError(f"{where}: argument 'activations' must be a list of names, "
                            f"got {names!r}")
    names = [n.decode() if isinstance(n, bytes) else n for n in names]
    if len(names) != count * directions:
        raise ArgumentError(f"{where}: argument 'activations' must name {count * directions} "
                            f"functions ({count} per direction), got {len(names)}")
    out = []
    lists = []
    for label, values in (("activation_alpha", alphas), ("activation_beta", betas)):
        values = [] if values is None else list(values)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(v):
                raise ArgumentError(f"{where}: argument '{label}' must hold finite numbers, "
                                    f"got {v!r}")
        lists.append([float(v) for v in values])
    alphas, betas = lists
    ia = ib = 0
    for name in names:
        key = name.lower() if isinstance(name, str) else name
        if key not in RNN_ACTIVATIONS:
            raise ArgumentError(f"{where}: argument 'activations' names an unknown function "
                                f"{name!r} (known: {', '.join(RNN_ACTIVATIONS)})")
        defaults = RNN_ACTIVATIONS[key]
        a = b = 0.0
        if len(defaults) > 0:
            a, ia = (alphas[ia], ia + 1) if ia < len(alphas) else (defaults[0], ia)
        if len(defaults) > 1:
            b, ib = (betas[ib], ib + 1) if ib < len(betas) else (defaults[1], ib)
        out.append(RnnActivation(key, a, b))
    return tuple(out)


def _optional(x: Any, shape: tuple[int, ...], name: str, where: str) -> bool:
    if x is None:
        return False
    got = array_shape(x, name, where)
    check_dtype(x, (FLOAT32,), name, where)
    if got != shape:
        raise ArgumentError(f"{where}: argument '{name}' must have shape {shape}, got {got}")
    return True


def _lengths(seq_lens: Any, seq: int, batch: int, where: str) -> tuple[int, ...] | None:
    if seq_lens is None:
        return None
    if not isinstance(seq_lens, np.ndarray):
        raise ArgumentError(f"{where}: argument 'sequence_lens' must be a host NumPy int "
                            f"array, got {type(seq_lens).__name__}")
    if seq_lens.dtype.kind not in "iu":
        raise ArgumentError(f"{where}: argument 'sequence_lens' must hold integers, "
                            f"got dtype {seq_lens.dtype}")
    if seq_lens.shape != (batch,):
        raise ArgumentError(f"{where}: argument 'sequence_lens' must have shape ({batch},), "
                            f"got {seq_lens.shape}")
    if np.any(seq_lens < 1) or np.any(seq_lens > seq):
        raise ArgumentError(f"{where}: argument 'sequence_lens' must lie in [1, {seq}], "
                            f"got {seq_lens.tolist()}")
    lengths = tuple(int(v) for v in seq_lens)
    return None if all(v == seq for v in lengths) else lengths


def check_rnn(x: Any, w: Any, r: Any, b: Any = None, sequence_lens: Any = None,
              initial_h: Any = None, initial_c: Any = None, p: Any = None, *,
              cell: Any = "lstm", hidden_size: Any = None, direction: Any = "forward",
              layout: Any = 0, activations: Any = None, activation_alpha: Any = None,
              activation_beta: Any = None, clip: Any = None, input_forget: Any = False,
              linear_before_reset: Any = False) -> RnnProblem:
    """ONNX RNN/GRU/LSTM's inputs and attributes -> an ``RnnProblem`` (see the module)."""
    if cell not in CELLS:
        raise ArgumentError(f"rnn: argument 'cell' must be one of {CELLS}, got {cell!r}")
    where = f"rnn({cell!r})"
    if isinstance(direction, bytes):
        direction = direction.decode()
    if direction not in DIRECTIONS:
        raise ArgumentError(f"{where}: argument 'direction' must be one of {DIRECTIONS}, "
                            f"got {direction!r}")
    if layout not in (0, 1) or isinstance(layout, bool):
        raise ArgumentError(f"{where}: argument 'layout' must be 0 or 1, got {layout!r}")
    for name, value in (("x", x), ("w", w), ("r", r)):
        check_rank(array_shape(value, name, where), 3, name, where)
        check_dtype(value, (FLOAT32,), name, where)
    xs, ws, rs = (tuple(int(d) for d in v.shape) for v in (x, w, r))
    seq, batch = (xs[1], xs[0]) if layout else (xs[0], xs[1])
    d = 2 if direction == "bidirectional" else 1
    g = GATES[cell]
    hidden = rs[2]
    if hidden_size is not None:
        if isinstance(hidden_size, bool) or not isinstance(hidden_size, (int, np.integer)) \
                or hidden_size < 1:
            raise ArgumentError(f"{where}: argument 'hidden_size' must be a positive int, "
                                f"got {hidden_size!r}")
        if int(hidden_size) != hidden:
            raise ArgumentError(f"{where}: argument 'hidden_size'={int(hidden_size)} does not "
                                f"match R's shape {rs} (hidden size {hidden})")
    if ws != (d, g * hidden, xs[2]):
        raise ArgumentError(f"{where}: argument 'w' must have shape {(d, g * hidden, xs[2])} "
                            f"(directions, {g}·hidden_size, input_size), got {ws}")
    if rs != (d, g * hidden, hidden):
        raise ArgumentError(f"{where}: argument 'r' must have shape {(d, g * hidden, hidden)}, "
                            f"got {rs}")
    state = (batch, d, hidden) if layout else (d, batch, hidden)
    has_b = _optional(b, (d, 2 * g * hidden), "b", where)
    has_h = _optional(initial_h, state, "initial_h", where)
    has_c = _optional(initial_c, state, "initial_c", where)
    has_p = _optional(p, (d, 3 * hidden), "p", where)
    if cell != "lstm" and (has_c or has_p):
        raise ArgumentError(f"{where}: arguments 'initial_c' and 'p' are LSTM's only")
    if clip is not None:
        if isinstance(clip, bool) or not isinstance(clip, (int, float, np.integer, np.floating)) \
                or not clip > 0 or not math.isfinite(clip):
            raise ArgumentError(f"{where}: argument 'clip' must be a positive finite number, "
                                f"got {clip!r}")
        clip = float(clip)
    flags = []
    for name, value, owner in (("input_forget", input_forget, "lstm"),
                               ("linear_before_reset", linear_before_reset, "gru")):
        if isinstance(value, (bool, np.bool_, int, np.integer)) and int(value) in (0, 1):
            value = bool(value)
        else:
            raise ArgumentError(f"{where}: argument '{name}' must be 0 or 1, got {value!r}")
        if value and cell != owner:
            raise UnsupportedError(f"{where}: argument '{name}' is {owner.upper()}'s only")
        flags.append(value)
    acts = _activations(cell, d, activations, activation_alpha, activation_beta, where)
    return RnnProblem(cell, seq, batch, xs[2], hidden, direction, int(layout), acts, clip,
                      flags[0], flags[1], has_b, has_p, has_h, has_c,
                      _lengths(sequence_lens, seq, batch, where))
