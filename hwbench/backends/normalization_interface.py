"""The kernel interface's normalization family: ``layer_norm`` (ONNX LayerNormalization).

Mixed into ``Backend``: the public method checks its arguments once for every backend,
then calls the backend's ``_layer_norm``; a backend without one says so by name.
"""

from __future__ import annotations

from typing import Any

from hwbench.kernels import spec


class NormalizationKernels:
    """``layer_norm`` and its default (``UnsupportedError``) implementation."""

    def layer_norm(self, x: Any, scale: Any, bias: Any = None, axis: int = -1,
                   epsilon: float = 1e-5, stats: bool = False) -> Any:
        """ONNX LayerNormalization (opset 17, float32 statistics): each slice over axes
        ``axis..rank-1`` normalized to mean 0 and variance 1 (plus ``epsilon``), times
        ``scale``, plus ``bias``. ``stats``: return ``(y, mean, inv_std_dev)``, the last
        two shaped like x with the normalized axes kept as 1."""
        self._check_foreign("layer_norm", x=x, scale=scale, bias=bias)
        problem = spec.check_layer_norm(x, scale, bias, axis, epsilon, stats)
        self._begin_kernel("layer_norm", problem)
        self._screen("layer_norm", x=x, scale=scale, bias=bias)
        return self._layer_norm(problem, x, scale, bias)

    def _layer_norm(self, p: spec.LayerNormProblem, x: Any, scale: Any, bias: Any) -> Any:
        raise self._unsupported("layer_norm")
