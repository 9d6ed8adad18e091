"""Nodes whose checks read run-time values, as a compiled plan replays them on a
host-array backend (issue 16: ``Backend._prepared_step``, ``hwbench.graph.plan``):
Gather of run-time indices, and an RNN on its traced sequence lengths (``prepared_rnn``).

The token ids a decoder step or an encoder feeds change every run, so the plan cannot
replay Gather's checked kernel: its problem holds the index tables ``spec.check_gather``
built from the values (~20 µs a call at batch 1 with the op function's lookups). Here
the bounds check is ``np.take``'s own (mode ``raise``: negative indices count from the
end, anything outside [-dim, dim) raises before a byte is read), the same copy the
kernel makes (``TakeProblem.apply``: one take along the axis). An out-of-range index, or
any argument the call was not built for, runs the op function, which raises the
``ArgumentError`` naming ``indices`` as the normal path does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

_ndarray = np.ndarray


def prepared_gather(backend: Any, step: Any, args: list[Any], out: Any) -> Callable | None:
    """``gather(x, indices)`` for the Gather ``step`` traced on ``args`` (giving ``out``):
    plain NumPy data of the traced shape and dtype and signed (or narrow unsigned)
    integer indices; None where the traced call was anything else."""
    if len(args) != 2:
        return None
    x, idx = args
    if type(x) is not _ndarray or type(idx) is not _ndarray or type(out) is not _ndarray \
            or x.dtype.hasobject or x.ndim == 0:
        return None
    kind, size = idx.dtype.kind, idx.dtype.itemsize
    if not (kind == "i" or kind == "u" and size < 8):  # what np.take reads as intp
        return None
    axis = int(step.node.attrs.get("axis", 0)) % x.ndim
    got = np.take(x, idx, axis=axis)
    if got.dtype != out.dtype or got.shape != out.shape or not np.array_equal(got, out):
        return None
    shape, dtype, idx_dtype, idx_shape = x.shape, x.dtype, idx.dtype, idx.shape
    fn = step.fn

    def gather(x: Any, idx: Any) -> Any:
        if type(x) is not _ndarray or type(idx) is not _ndarray or x.shape != shape \
                or x.dtype != dtype or idx.dtype != idx_dtype or idx.shape != idx_shape:
            return fn(backend, [x, idx], step)
        try:
            return x.take(idx, axis)  # np.take less its dispatch
        except IndexError:  # out of range: the op function names the argument
            return fn(backend, [x, idx], step)
    gather.fixed = _fixed_take(shape, dtype, idx_shape, idx_dtype, axis, out.shape)
    return gather


def _fixed_take(shape: tuple, dtype: np.dtype, idx_shape: tuple, idx_dtype: np.dtype,
                axis: int, out_shape: tuple) -> Callable:
    """The gather's fixed form (``hwbench.graph.step_chain``): ``np.take`` of the same
    kind of arguments into an output of its own; an out-of-range index raises
    ``IndexError`` there, and the chain hands that run to the plan."""
    partial = functools.partial

    def fixed(args: tuple, kwargs: dict) -> tuple[Callable, np.ndarray] | None:
        if kwargs or len(args) != 2:
            return None
        x, idx = args
        if type(x) is not _ndarray or type(idx) is not _ndarray or x.shape != shape \
                or x.dtype != dtype or idx.dtype != idx_dtype or idx.shape != idx_shape:
            return None
        out = np.empty(out_shape, dtype)
        # the array's own ``take`` (np.take's work less its dispatch: ~1 µs less)
        return partial(x.take, idx, axis, out), out
    return fixed


def prepared_rnn(backend: Any, step: Any, args: list[Any], out: Any,
                 problem: Any) -> Callable | None:
    """``rnn(x, w, r, b, sequence_lens, ...)`` for an RNN/GRU/LSTM ``step`` whose
    run-time ``sequence_lens`` (a host input: ``spec.check_rnn`` reads the values) was
    traced with ``problem``: the backend's ``_rnn`` on that problem while the lengths are
    the traced ones, byte for byte, and every other argument the traced kind (the
    weights the same objects, the activations plain arrays of the traced shapes); any
    other call runs the op function (all its checks). The translator's encoder spent
    ~2/3 of its LSTM's time in the op function's checks and lookups."""
    from hwbench.kernels.spec import RnnProblem

    traced = list(args) + [None] * (8 - len(args))
    lens = traced[4]
    if type(problem) is not RnnProblem or type(lens) is not _ndarray or lens.ndim != 1 \
            or len(args) > 8 or type(out) is not tuple:
        return None
    runtime = (0, 5, 6)  # x, initial_h, initial_c: plain arrays of the traced kind
    if any(traced[i] is not None and type(traced[i]) is not _ndarray for i in runtime):
        return None
    kinds = [None if traced[i] is None else (traced[i].shape, traced[i].dtype)
             for i in runtime]
    fixed = (traced[1], traced[2], traced[3], traced[7])  # w, r, b, p: weights
    key, lens_kind = lens.tobytes(), (lens.shape, lens.dtype)
    # the class's methods: the plan builds this while tracing, when the instance's own
    # attributes are the recorder's wrappers
    cls = type(backend)
    kernel, begin = cls._rnn.__get__(backend), cls._begin_kernel.__get__(backend)
    fn, count = step.fn, len(args)
    # a backend's own replay of the kernel on these lengths and weights (cpu: the spans'
    # primitives bound), None from it for a call it was not built for
    build = getattr(cls, "_rnn_lengths_runner", None)
    outs = step.node.outputs  # an LSTM's Y_c read by no one: no final cell state needed
    runner = None if build is None else build(backend, problem, *fixed,
                                              cell_state=len(outs) > 2 and bool(outs[2]))

    def rnn(*a: Any) -> Any:
        full = list(a) + [None] * (8 - count)
        x, w, r, b, lengths, h0, c0, peep = full
        if type(lengths) is not _ndarray or (lengths.shape, lengths.dtype) != lens_kind \
                or lengths.tobytes() != key or w is not fixed[0] or r is not fixed[1] \
                or b is not fixed[2] or peep is not fixed[3] or any(
                    (v is not None) if k is None else
                    (type(v) is not _ndarray or (v.shape, v.dtype) != k)
                    for v, k in zip((x, h0, c0), kinds, strict=True)):
            return fn(backend, list(a), step)
        begin("rnn", problem)
        if runner is not None:
            out = runner(x, h0, c0)
            if out is not None:
                return out
        return kernel(problem, x, w, r, b, h0, c0, peep)
    if runner is not None and hasattr(runner, "fixed"):
        rnn.fixed = _fixed_rnn(runner.fixed, count, key, lens_kind, fixed,
                               lambda: begin("rnn", problem))
    return rnn


def _fixed_rnn(fixed_runner: Callable, count: int, key: bytes, lens_kind: tuple,
               weights: tuple, begin: Callable) -> Callable:
    """``prepared_rnn``'s fixed form (``hwbench.graph.step_chain``): the backend
    runner's, guarded: a run whose lengths are not the traced ones returns True (not
    served: the chain hands the run to the plan)."""
    def fixed(args: tuple, kwargs: dict) -> tuple[Callable, tuple] | None:
        x, w, r, b, lengths, h0, c0, peep = list(args) + [None] * (8 - count)
        if kwargs or len(args) != count or type(lengths) is not _ndarray \
                or (lengths.shape, lengths.dtype) != lens_kind \
                or any(u is not v for u, v in zip((w, r, b, peep), weights, strict=True)):
            return None
        got = fixed_runner(x, h0, c0)
        if got is None:
            return None
        run, outs = got
        tobytes = lengths.tobytes

        def guarded() -> bool:
            if tobytes() != key:
                return True
            begin()
            run()
            return False
        guarded.guarded = True  # type: ignore[attr-defined]
        return guarded, outs
    return fixed
