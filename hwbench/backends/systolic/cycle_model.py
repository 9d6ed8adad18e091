"""The cycle-stepped model: every PE register advanced one clock at a time.

The ground truth for timing, and slow (a Python loop over cycles, NumPy over the PE grid),
so it is meant for small arrays. It runs the actual values through the array, so a test
can check both what comes out (against ``A @ B``) and when (against ``analytic``). Every
value in flight carries a tag (the index of the output it belongs to); a PE that would
combine values of different outputs raises, so a wrong skew cannot go unnoticed. A fold
ends when its last result has left the array, detected from the tags, never from a
formula.

The machine (PE (i, j): row i from the top, column j from the left; a fold uses the
top-left ``r × c`` PEs):

- ws / is (a stationary tile): the tile shifts in from the top edge one row per cycle,
  last row first (``r`` cycles). Then stream vector ``t`` enters row ``i`` at the left
  edge in cycle ``t + i`` and moves one column right per cycle; partial sums move one row
  down per cycle and leave the bottom edge, all ``R`` rows down. For ws the tile is
  ``B[k-block, n-block]`` and the streamed vectors are the rows of ``A``; for is the tile
  is ``A[m-block, k-block]ᵀ`` and the streamed vectors are the columns of ``B``.
- os: ``A[m, κ]`` enters row ``m`` at the left in cycle ``κ + m``, ``B[κ, n]`` enters
  column ``n`` at the top in cycle ``κ + n``; PE (m, n) accumulates in place. When every
  PE has its ``k`` products, the accumulators shift down one row per cycle and leave the
  bottom edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwbench.backends.systolic.analytic import mapping
from hwbench.backends.systolic.config import SystolicConfig
from hwbench.errors import ArgumentError

NO_TAG = -1


class SkewError(AssertionError):
    """Two values of different outputs met in one PE: the model's wiring is wrong."""


@dataclass(frozen=True)
class CycleResult:
    values: np.ndarray  # int64, m × n: the exact product
    cycles: int         # clock cycles, all folds back to back
    fold_cycles: list[int]


def _shift_right(grid: np.ndarray, left: np.ndarray) -> np.ndarray:
    out = np.empty_like(grid)
    out[:, 0] = left
    out[:, 1:] = grid[:, :-1]
    return out


def _shift_down(grid: np.ndarray, top: np.ndarray) -> np.ndarray:
    out = np.empty_like(grid)
    out[0] = top
    out[1:] = grid[:-1]
    return out


def stationary_fold(rows: int, cols: int, tile: np.ndarray,
                    stream: np.ndarray) -> tuple[np.ndarray, int]:
    """One ws/is fold: ``tile`` (r × c) held in the PEs, ``stream`` (T × r) vectors pushed
    through; returns ``(stream @ tile, cycles)``."""
    r, c = tile.shape
    T = stream.shape[0]
    R, C = rows, cols
    cycles = 0
    # 1. Load: the tile shifts down from the top edge, its last row first.
    chain = np.zeros((R, C), np.int64)
    for step in range(r):
        top = np.zeros(C, np.int64)
        top[:c] = tile[r - 1 - step]
        chain = _shift_down(chain, top)
        cycles += 1
    weight = chain
    # 2. Stream: activations move right, partial sums move down; both tagged.
    act = np.zeros((R, C), np.int64)
    act_tag = np.full((R, C), NO_TAG, np.int64)
    psum = np.zeros((R, C), np.int64)
    psum_tag = np.full((R, C), NO_TAG, np.int64)
    row_ids = np.arange(R)
    out = np.zeros((T, c), np.int64)
    done = np.zeros((T, c), bool)
    remaining = T * c
    t = 0  # cycles since streaming began
    while remaining:
        index = t - row_ids  # the stream vector each row's left edge sees in cycle t
        live = (index >= 0) & (index < T) & (row_ids < r)
        left = np.zeros(R, np.int64)
        left[live] = stream[index[live], row_ids[live]]
        act = _shift_right(act, left)
        act_tag = _shift_right(act_tag, np.where(live, index, NO_TAG))
        p_in = _shift_down(psum, np.zeros(C, np.int64))
        tag_in = _shift_down(psum_tag, act_tag[0])
        if np.any((act_tag[1:] >= 0) & (tag_in[1:] != act_tag[1:])):
            raise SkewError("ws/is: an activation met a partial sum of another output")
        psum = p_in + np.where(act_tag >= 0, weight * act, 0)
        psum_tag = tag_in
        cycles += 1
        t += 1
        leaving = psum_tag[R - 1, :c]
        ok = leaving >= 0
        if ok.any():
            cols_out = np.nonzero(ok)[0]
            out[leaving[ok], cols_out] = psum[R - 1, cols_out]
            fresh = ~done[leaving[ok], cols_out]
            done[leaving[ok], cols_out] = True
            remaining -= int(fresh.sum())
    return out, cycles


def output_stationary_fold(rows: int, cols: int, a_block: np.ndarray,
                           b_block: np.ndarray) -> tuple[np.ndarray, int]:
    """One os fold: ``a_block`` (r × T) from the left, ``b_block`` (T × c) from the top;
    returns ``(a_block @ b_block, cycles)``."""
    r, T = a_block.shape
    c = b_block.shape[1]
    R, C = rows, cols
    a = np.zeros((R, C), np.int64)
    a_tag = np.full((R, C), NO_TAG, np.int64)
    b = np.zeros((R, C), np.int64)
    b_tag = np.full((R, C), NO_TAG, np.int64)
    acc = np.zeros((R, C), np.int64)
    count = np.zeros((R, C), np.int64)
    row_ids, col_ids = np.arange(R), np.arange(C)
    cycles = 0
    # 1. Compute: operands skewed in from the left and the top, products accumulated.
    while not np.all(count[:r, :c] == T):
        ka = cycles - row_ids
        live_a = (ka >= 0) & (ka < T) & (row_ids < r)
        left = np.zeros(R, np.int64)
        left[live_a] = a_block[row_ids[live_a], ka[live_a]]
        kb = cycles - col_ids
        live_b = (kb >= 0) & (kb < T) & (col_ids < c)
        top = np.zeros(C, np.int64)
        top[live_b] = b_block[kb[live_b], col_ids[live_b]]
        a, a_tag = _shift_right(a, left), _shift_right(a_tag, np.where(live_a, ka, NO_TAG))
        b, b_tag = _shift_down(b, top), _shift_down(b_tag, np.where(live_b, kb, NO_TAG))
        both = (a_tag >= 0) & (b_tag >= 0)
        if np.any(both & (a_tag != b_tag)):
            raise SkewError("os: operands of different reduction steps met in a PE")
        acc += np.where(both, a * b, 0)
        count += both
        cycles += 1
        if cycles > 4 * (T + R + C):
            raise SkewError("os: the fold never completed")
    # 2. Drain: the accumulators shift down and leave the bottom edge one row per cycle.
    out = np.zeros((r, c), np.int64)
    row_tag = np.where(row_ids < r, row_ids, NO_TAG)
    collected = 0
    while collected < r:
        leaving, tag = acc[R - 1, :c].copy(), row_tag[R - 1]
        acc = _shift_down(acc, np.zeros(C, np.int64))
        row_tag = np.concatenate(([NO_TAG], row_tag[:-1]))
        cycles += 1
        if tag >= 0:
            out[tag] = leaving
            collected += 1
    return out, cycles


def simulate_gemm(config: SystolicConfig, a: np.ndarray, b: np.ndarray) -> CycleResult:
    """``A @ B`` (integers, exact in int64) through the array fold by fold, in the
    analytic model's order (column folds outside, row folds inside)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ArgumentError(f"simulate_gemm: cannot multiply {a.shape} by {b.shape}")
    m, k = a.shape
    n = b.shape[1]
    R, C = config.rows, config.cols
    rows_dim, cols_dim, _ = mapping(config.dataflow, m, k, n)
    out = np.zeros((m, n), np.int64)
    per_fold = []
    for j0 in range(0, cols_dim, C):
        cs = slice(j0, min(j0 + C, cols_dim))
        for i0 in range(0, rows_dim, R):
            rs = slice(i0, min(i0 + R, rows_dim))
            if config.dataflow == "ws":      # tile B[k, n], stream the rows of A
                part, cycles = stationary_fold(R, C, b[rs, cs], a[:, rs])
                out[:, cs] += part
            elif config.dataflow == "is":    # tile A[m, k]ᵀ, stream the columns of B
                part, cycles = stationary_fold(R, C, a[cs, rs].T, b[rs, :].T)
                out[cs, :] += part.T
            else:                            # os: rows are m, columns are n
                part, cycles = output_stationary_fold(R, C, a[rs, :], b[:, cs])
                out[rs, cs] = part
            per_fold.append(cycles)
    return CycleResult(out, sum(per_fold), per_fold)
