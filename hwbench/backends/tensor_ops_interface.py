"""The kernel interface's run-time data movement (ONNX Slice, Gather, Expand, Pad, Tile):
public methods that check their arguments, then one private kernel per op.

Every op is an axis-wise take (``spec.TakeProblem``): the index tables are built and
bounds-checked on the host by ``spec``, so by default each ``_<op>`` runs the backend's
one ``_take`` kernel; a backend with a faster path for one op overrides its ``_<op>``.
"""

from __future__ import annotations

from typing import Any

from hwbench.kernels import spec


class TensorOpsInterface:
    """Mixed into ``Backend``: Slice, Gather, Expand, Pad and Tile."""

    def slice(self, x: Any, starts: Any, ends: Any, axes: Any = None,
              steps: Any = None) -> Any:
        """ONNX Slice: ``starts``/``ends``/``axes``/``steps`` are host ints; negative
        bounds count from the end and are clamped; steps may be negative."""
        self._check_foreign("slice", x=x)
        problem = spec.check_slice(x, starts, ends, axes, steps)
        self._begin_kernel("slice", problem)
        self._screen("slice", x=x)
        return self._slice(problem, x)

    def gather(self, x: Any, indices: Any, axis: int = 0) -> Any:
        """ONNX Gather (an embedding lookup at ``axis`` 0): ``indices`` is a host NumPy
        integer array, bounds-checked before anything runs (negative ones count from the
        end); the result has shape ``x.shape[:axis] + indices.shape + x.shape[axis+1:]``."""
        self._check_foreign("gather", x=x)
        problem = spec.check_gather(x, indices, axis)
        self._begin_kernel("gather", problem)
        self._screen("gather", x=x)
        return self._gather(problem, x)

    def expand(self, x: Any, shape: Any) -> Any:
        """ONNX Expand: ``x`` broadcast with the host ints ``shape``."""
        self._check_foreign("expand", x=x)
        problem = spec.check_expand(x, shape)
        self._begin_kernel("expand", problem)
        self._screen("expand", x=x)
        return self._expand(problem, x)

    def pad(self, x: Any, pads: Any, mode: str = "constant", value: float = 0.0) -> Any:
        """ONNX Pad: ``pads`` = (begin per axis..., end per axis...) host ints (negative
        ones crop); ``mode`` constant (filled with ``value``), reflect, edge or wrap."""
        self._check_foreign("pad", x=x)
        problem = spec.check_pad(x, pads, mode, value)
        self._begin_kernel("pad", problem)
        self._screen("pad", x=x)
        return self._pad(problem, x)

    def tile(self, x: Any, repeats: Any) -> Any:
        """ONNX Tile: ``x`` repeated ``repeats[d]`` times along each axis d."""
        self._check_foreign("tile", x=x)
        problem = spec.check_tile(x, repeats)
        self._begin_kernel("tile", problem)
        self._screen("tile", x=x)
        return self._tile(problem, x)

    # -- what a backend implements: ``_take``, and any op it does better on its own ------
    def _take(self, p: spec.TakeProblem, x: Any) -> Any:
        raise self._unsupported(p.op)

    def _slice(self, p: spec.TakeProblem, x: Any) -> Any:
        return self._take(p, x)

    def _gather(self, p: spec.TakeProblem, x: Any) -> Any:
        return self._take(p, x)

    def _expand(self, p: spec.TakeProblem, x: Any) -> Any:
        return self._take(p, x)

    def _pad(self, p: spec.TakeProblem, x: Any) -> Any:
        return self._take(p, x)

    def _tile(self, p: spec.TakeProblem, x: Any) -> Any:
        return self._take(p, x)

    # what the executor reads to tell whether a backend has each op: one with ``_take``
    for _default in (_slice, _gather, _expand, _pad, _tile):
        _default.runs_via = "_take"  # type: ignore[attr-defined]
    del _default
