"""The upsampling family's kernel interface (a mixin of ``Backend``):
``conv_transpose2d`` (ONNX ConvTranspose) and ``resize`` (ONNX Resize / Upsample)."""

from __future__ import annotations

from typing import Any

from hwbench.kernels import spec


class UpsamplingInterface:
    """Checks every argument once for every backend, then calls ``_conv_transpose2d`` /
    ``_resize`` with the validated problem."""

    def conv_transpose2d(self, x: Any, w: Any, bias: Any = None, stride: Any = 1,
                         padding: Any = 0, dilation: Any = 1, groups: int = 1,
                         output_padding: Any = 0) -> Any:
        """ONNX ConvTranspose: NCHW float32 ``x``, weights (C, K/groups, R, S), optional bias
        (K,). ``padding``: int, (h, w) or (h_begin, w_begin, h_end, w_end), negative values
        extending the output; ``output_padding`` adds rows/columns at the end."""
        self._check_foreign("conv_transpose2d", x=x, w=w, bias=bias)
        problem = spec.check_conv_transpose2d(x, w, bias, stride, padding, dilation, groups,
                                              output_padding)
        self._begin_kernel("conv_transpose2d", problem)
        self._screen("conv_transpose2d", x=x, w=w, bias=bias)
        return self._conv_transpose2d(problem, x, w, bias)

    def resize(self, x: Any, scales: Any = None, sizes: Any = None, **options: Any) -> Any:
        """ONNX Resize of float32 ``x`` (any rank) by ``scales`` or to ``sizes`` (host
        values); ``options``: mode, coordinate_transformation_mode, nearest_mode,
        cubic_coeff_a, exclude_outside, extrapolation_value, antialias, roi, axes,
        keep_aspect_ratio_policy, with ONNX's names, values and defaults. Nearest mode
        takes any layout element type: on anything but float32 it is the axis-wise take
        that Slice and Gather run (``ResizeProblem.as_take``), exact on every backend."""
        self._check_foreign("resize", x=x)
        problem = spec.check_resize(x, scales, sizes, **options)
        self._begin_kernel("resize", problem)
        self._screen("resize", x=x)
        if problem.dtype != spec.FLOAT32:
            return self._take(problem.as_take(), x)
        return self._resize(problem, x)

    def _conv_transpose2d(self, p: spec.ConvTransposeProblem, x: Any, w: Any, bias: Any) -> Any:
        raise self._unsupported("conv_transpose2d")

    def _resize(self, p: spec.ResizeProblem, x: Any) -> Any:
        raise self._unsupported("resize")
