"""ONNX Resize as separable per-axis tables: for each resized axis, every output index
reads ``taps`` input indices (clamped to the axis: ONNX pads the input by repeating its
edge) with float64 weights, and tf_crop_and_resize marks the outputs whose source falls
outside the input (they take ``extrapolation_value``).

Every mode of ONNX Resize (opsets 11-19) is separable: nearest (any ``nearest_mode``),
n-linear and cubic, with or without antialias, under every coordinate transformation
mode, so one table per axis defines the op; ``spec.check_resize`` builds them and every
backend applies them (``upsampling_reference.resize_axis``, or its device twin). The
arithmetic follows the ONNX reference implementation (onnx/reference/ops/op_resize.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MODES = ("nearest", "linear", "cubic")
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                    "align_corners", "asymmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
ASPECT_POLICIES = ("stretch", "not_larger", "not_smaller")


@dataclass(frozen=True, eq=False)
class AxisTable:
    """One resized axis: ``out[..., j, ...] = sum_t weight[j, t] · x[..., index[j, t], ...]``
    (``index`` already clamped into [0, in_len)), then ``outside[j]`` (None: none) set to
    the extrapolation value. ``x_ori``: each output's source coordinate."""

    axis: int
    in_len: int
    out_len: int
    scale: float
    index: np.ndarray   # (out_len, taps) int32
    weight: np.ndarray  # (out_len, taps) float64
    outside: np.ndarray | None
    x_ori: np.ndarray

    @property
    def taps(self) -> int:
        return int(self.index.shape[1])


def source_coordinates(mode: str, out_len: int, in_len: int, scale: float,
                       roi: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Each output index's coordinate in the input, and (tf_crop_and_resize) which fall
    outside it."""
    y = np.arange(out_len, dtype=np.float64)
    width = scale * in_len  # ONNX's output_width: the scaled size, before truncation
    outside = None
    if mode == "align_corners":
        x = np.zeros(out_len) if width == 1 else y * (in_len - 1) / (width - 1)
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "tf_crop_and_resize":
        lo, hi = roi if roi is not None else (0.0, 1.0)
        if width == 1:
            x = np.full(out_len, (hi - lo) * (in_len - 1) / 2)
        else:
            x = y * (hi - lo) * (in_len - 1) / (width - 1)
        x = x + lo * (in_len - 1)
        outside = (x < 0) | (x > in_len - 1)
    elif mode == "pytorch_half_pixel":
        x = np.full(out_len, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    elif mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    else:  # half_pixel_symmetric
        offset = in_len / 2 * (1 - out_len / width)
        x = offset + (y + 0.5) / scale - 0.5
    return x, outside


def _coefficients(ratio: np.ndarray, scale: float, mode: str, nearest_mode: str, a: float,
                  antialias: bool) -> np.ndarray:
    """(out, taps) weights at each output's fractional position ``ratio`` in (0, 1]."""
    r = ratio[:, None]
    if mode == "nearest":
        whole = ratio == 1.0
        lo = {"round_prefer_floor": ratio <= 0.5, "round_prefer_ceil": ratio < 0.5,
              "floor": np.ones_like(whole), "ceil": np.zeros_like(whole)}[nearest_mode]
        lo = lo & ~whole
        return np.stack([lo, ~lo], axis=1).astype(np.float64)
    if mode == "linear" and not antialias:
        return np.concatenate([1 - r, r], axis=1)
    if mode == "cubic" and not antialias:
        def far(t):
            return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

        def near(t):
            return ((a + 2) * t - (a + 3)) * t * t + 1
        return np.concatenate([far(r + 1), near(r), near(1 - r), far(2 - r)], axis=1)
    s = min(scale, 1.0)
    if mode == "linear":
        start = int(math.floor(-1 / s) + 1)
        args = (np.arange(start, 2 - start)[None, :] - r) * s
        coeffs = np.clip(1 - np.abs(args), 0, 1)
    else:
        start = int(math.floor(-2 / s) + 1)
        t = np.abs(s * (np.arange(start, 2 - start)[None, :] - r))
        coeffs = np.where(t <= 1, (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1,
                          np.where(t < 2, a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a, 0.0))
    return coeffs / coeffs.sum(axis=1, keepdims=True)


def axis_table(axis: int, in_len: int, out_len: int, scale: float, *, mode: str,
               coordinate_mode: str, nearest_mode: str, cubic_coeff_a: float,
               exclude_outside: bool, antialias: bool,
               roi: tuple[float, float] | None) -> AxisTable:
    x, outside = source_coordinates(coordinate_mode, out_len, in_len, scale, roi)
    base = np.floor(x)
    ratio = np.where(x == base, 1.0, x - base)
    coeffs = _coefficients(ratio, scale, mode, nearest_mode, cubic_coeff_a, antialias)
    n = coeffs.shape[1]
    pad = (n + 1) // 2
    xp = x + pad
    p = np.floor(xp)
    frac = xp - p
    if n % 2 == 0:
        offset = np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        offset = np.where(frac <= 0.5, -((n - 1) // 2), -((n - 1) // 2) + 1)
    index = (p.astype(np.int64) + offset)[:, None] + np.arange(n)[None, :] - pad
    if exclude_outside:
        coeffs = np.where((index < 0) | (index >= in_len), 0.0, coeffs)
        total = coeffs.sum(axis=1, keepdims=True)
        coeffs = coeffs / np.where(total == 0, 1.0, total)
    index = np.clip(index, 0, in_len - 1).astype(np.int32)
    if mode == "nearest":  # one tap, the chosen one: 0 · inf in a two-tap sum would be NaN
        pick = np.argmax(coeffs, axis=1)[:, None]
        index = np.take_along_axis(index, pick, axis=1)
        coeffs = np.take_along_axis(coeffs, pick, axis=1)
    if outside is not None and not outside.any():
        outside = None
    for arr in (index, coeffs, x) + (() if outside is None else (outside,)):
        arr.setflags(write=False)
    return AxisTable(axis, in_len, out_len, float(scale), index, coeffs, outside, x)
