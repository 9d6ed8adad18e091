"""Benchmark problem lists behind ``hwbench kernels --shapes NAME``.

NAME is one of ``small``, ``deepbench``, ``deepbench-device`` or ``resnet50``.

Why these sets: ``deepbench`` gives shapes that other vendors have published numbers for,
``resnet50`` is the CNN the project's performance target is stated on (its 3x3 layers in
particular), and ``small`` makes a whole sweep finish in seconds on a 2-core CI machine.

Sources:

* The DeepBench inference problems are transcribed as data from
  ``code/kernels/gemm_problems.h`` (commit 0201198555d12aedc44eb54c19436dcb5de25feb) and
  ``code/kernels/conv_problems.h`` (commit e54214fefaba4e69843a522b0fbe5ee7205579a3) of
  https://github.com/baidu-research/DeepBench (Apache-2.0). Only the numbers are taken; the
  code around them is ours. Field orders, from the headers' own comments:
  GEMM ``(m, n, k, a_t, b_t)``; conv ``(w, h, c, n, k, filter_w (s), filter_h (r), pad_w,
  pad_h, wstride, hstride)``. The header lists are kept as they are, duplicates included
  (the conv server set repeats four of its problems), so that our counts match theirs:
  GEMM server 75, GEMM device 13, conv server 107, conv device 16. In that revision the
  conv device set comments out a 151x40 speech layer ("ARM convolution seg faults");
  another revision (1a81dcb94744246beede5b69a3a5740c4677ecad) has that layer and comments
  out the 7x7x512 3x3 one instead, which also gives 16.
* ResNet-50 is derived from the architecture (torchvision / "v1.5" layout, where the stride
  of a downsampling bottleneck sits on its 3x3 conv), not typed in as a table.

Conventions (ours, not DeepBench's): a GEMM computes ``C[m, n] = op(A) @ op(B)`` with
``op(A)`` of shape m x k and ``op(B)`` of shape k x n; a conv takes NCHW input
``(n, c, h, w)`` and OIHW weights ``(k, c // groups, r, s)``, with ONNX padding order
``(h_begin, w_begin, h_end, w_end)``. ``flops`` counts a multiply-add as two operations.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, replace

from hwbench.kernels.spec import ConvProblem, GemmProblem

PROBLEM_SETS: tuple[str, ...] = (
    "small", "deepbench", "deepbench-device", "resnet50", "headline"
)
"""Names accepted by :func:`get_problem_set` (and by ``--shapes``)."""

HEADLINE_GEMM_SIZES: tuple[int, ...] = (256, 512, 1024, 2048, 4096)
"""Square GEMM sizes for the headline GFLOP/s measurement (see :func:`square_gemm`)."""


def _argument_error(message: str) -> Exception:
    # Imported lazily so this data module stays importable on its own.
    from hwbench.errors import ArgumentError

    return ArgumentError(message)


def _positive_int(owner: str, arg: str, value: object) -> int:
    """``value`` as a Python int (NumPy integers accepted), or an error naming ``arg``."""
    if not isinstance(value, bool):
        try:
            number = operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            number = 0
        if number >= 1:
            return number
    raise _argument_error(f"{owner}: `{arg}` must be a positive int, got {value!r}")


def _check_positive(owner: str, **values: object) -> None:
    for arg, value in values.items():
        _positive_int(owner, arg, value)


def _int_tuple(owner: str, arg: str, value: object, length: int, minimum: int) -> tuple:
    """``value`` as a tuple of ``length`` Python ints, each >= ``minimum``."""
    items: list[int] = []
    try:
        for item in value:  # type: ignore[attr-defined]
            if isinstance(item, bool):
                raise TypeError
            items.append(operator.index(item))
    except TypeError:
        items = []
    if len(items) != length or min(items) < minimum:
        raise _argument_error(f"{owner}: `{arg}` must be {length} ints >= {minimum}, got {value!r}")
    return tuple(items)


def _normalise_ints(shape: object, names: tuple[str, ...]) -> None:
    # Frozen dataclass: validated values are written back with object.__setattr__.
    owner = type(shape).__name__
    for name in names:
        object.__setattr__(shape, name, _positive_int(owner, name, getattr(shape, name)))


@dataclass(frozen=True)
class GemmShape(GemmProblem):
    """One GEMM problem: ``C[m, n] = op(A) @ op(B)``, ``op(A)`` is m x k, ``op(B)`` is k x n.

    ``trans_a``/``trans_b`` say that A/B are *stored* transposed (as BLAS ``T``), so a
    backend has to honour the layout rather than get a pre-transposed copy. ``count`` is
    how many times the problem occurs in the model it came from (for weighted totals).
    """

    name: str = ""
    count: int = 1

    def __post_init__(self) -> None:
        _normalise_ints(self, ("m", "n", "k", "count"))
        object.__setattr__(self, "trans_a", bool(self.trans_a))
        object.__setattr__(self, "trans_b", bool(self.trans_b))
        if not self.name:
            suffix = ("T" if self.trans_a else "N") + ("T" if self.trans_b else "N")
            object.__setattr__(self, "name", f"gemm_{self.m}x{self.n}x{self.k}_{suffix}")

    @property
    def a_shape(self) -> tuple[int, int]:
        """Shape of A as stored: (m, k), or (k, m) when ``trans_a``."""
        return (self.k, self.m) if self.trans_a else (self.m, self.k)

    @property
    def b_shape(self) -> tuple[int, int]:
        """Shape of B as stored: (k, n), or (n, k) when ``trans_b``."""
        return (self.n, self.k) if self.trans_b else (self.k, self.n)

    @property
    def c_shape(self) -> tuple[int, int]:
        return (self.m, self.n)


@dataclass(frozen=True)
class ConvShape(ConvProblem):
    """One 2-D convolution problem in NCHW / OIHW terms with ONNX Conv semantics.

    ``padding`` is ``(h_begin, w_begin, h_end, w_end)`` so that asymmetric (TF "SAME")
    padding is expressible; ``count`` is how many times the layer occurs in its model.
    """

    name: str = ""
    count: int = 1

    def __post_init__(self) -> None:
        _normalise_ints(self, ("n", "c", "h", "w", "k", "r", "s", "groups", "count"))
        set_ = object.__setattr__
        set_(self, "stride", _int_tuple("ConvShape", "stride", self.stride, 2, 1))
        set_(self, "padding", _int_tuple("ConvShape", "padding", self.padding, 4, 0))
        set_(self, "dilation", _int_tuple("ConvShape", "dilation", self.dilation, 2, 1))
        if self.c % self.groups or self.k % self.groups:
            raise _argument_error(
                f"ConvShape: `groups` ({self.groups}) must divide c ({self.c}) and k ({self.k})"
            )
        if self.out_h < 1 or self.out_w < 1:
            raise _argument_error(
                f"ConvShape: `padding`/`stride` give an empty output {self.out_h}x{self.out_w}"
                f" for input {self.h}x{self.w} and kernel {self.r}x{self.s}"
            )
        if not self.name:
            set_(self, "name", self._default_name())

    def _default_name(self) -> str:
        name = f"conv_n{self.n}_c{self.c}_{self.h}x{self.w}_k{self.k}_{self.r}x{self.s}"
        if self.stride != (1, 1):
            name += f"_s{self.stride[0]}x{self.stride[1]}"
        if any(self.padding):
            name += "_p" + "-".join(map(str, self.padding))
        if self.dilation != (1, 1):
            name += f"_d{self.dilation[0]}x{self.dilation[1]}"
        if self.groups != 1:
            name += f"_g{self.groups}"
        return name


def total_flops(shapes: Iterable[GemmShape | ConvShape]) -> int:
    """Sum of ``flops * count``: the work of a whole model rather than of its distinct layers."""
    return sum(shape.flops * shape.count for shape in shapes)


def square_gemm(n: int) -> GemmShape:
    """The n x n x n GEMM used for headline GFLOP/s numbers."""
    _check_positive("square_gemm", n=n)
    return GemmShape(n, n, n, name=f"gemm_{n}^3")


# --------------------------------------------------------------------------------------
# DeepBench inference problems (data; see the module docstring for source and field order)
# --------------------------------------------------------------------------------------

_DbGemm = tuple[int, int, int, bool, bool]
# (w, h, c, n, k, filter_w(s), filter_h(r), pad_w, pad_h, wstride, hstride)
_DbConv = tuple[int, int, int, int, int, int, int, int, int, int, int]

# gemm_problems.h: inference_server_set / inference_device_set, (m, n, k, a_t, b_t).
_DB_GEMM_SERVER: tuple[_DbGemm, ...] = (
    (5124, 700, 2048, False, False),
    (35, 700, 2048, False, False),
    (5124, 700, 2560, False, False),
    (35, 700, 2560, False, False),
    (5124, 1500, 2048, False, False),
    (35, 1500, 2048, False, False),
    (5124, 1500, 2560, False, False),
    (35, 1500, 2560, False, False),
    (7680, 1, 2560, False, False),
    (7680, 2, 2560, False, False),
    (7680, 4, 2560, False, False),
    (3072, 1, 1024, False, False),
    (3072, 2, 1024, False, False),
    (3072, 4, 1024, False, False),
    (512, 1, 500000, False, False),
    (1024, 1, 500000, False, False),
    (512, 2, 500000, False, False),
    (1024, 2, 500000, False, False),
    (512, 4, 500000, False, False),
    (1024, 4, 500000, False, False),
    (1024, 700, 512, False, False),
    (7680, 1500, 2560, False, False),
    (6144, 1500, 2048, False, False),
    (4608, 1500, 1536, False, False),
    (8448, 1500, 2816, False, False),
    (3072, 1500, 1024, False, False),
    (7680, 3000, 2560, False, False),
    (6144, 3000, 2048, False, False),
    (4608, 3000, 1536, False, False),
    (8448, 3000, 2816, False, False),
    (3072, 3000, 1024, False, False),
    (7680, 6000, 2560, False, False),
    (6144, 6000, 2048, False, False),
    (4608, 6000, 1536, False, False),
    (8448, 6000, 2816, False, False),
    (3072, 6000, 1024, False, False),
    (6144, 1, 2048, False, False),
    (4608, 1, 1536, False, False),
    (8448, 1, 2816, False, False),
    (6144, 2, 2048, False, False),
    (4608, 2, 1536, False, False),
    (8448, 2, 2816, False, False),
    (6144, 4, 2048, False, False),
    (4608, 4, 1536, False, False),
    (8448, 4, 2816, False, False),
    (512, 1500, 2816, False, False),
    (512, 1500, 2048, False, False),
    (512, 1500, 2560, False, False),
    (512, 1500, 1536, False, False),
    (1024, 1500, 2816, False, False),
    (1024, 1500, 2048, False, False),
    (1024, 1500, 2560, False, False),
    (1024, 1500, 1536, False, False),
    (512, 1, 512, False, False),
    (1024, 1, 512, False, False),
    (512, 3000, 2816, False, False),
    (512, 3000, 2048, False, False),
    (512, 3000, 2560, False, False),
    (512, 3000, 1536, False, False),
    (1024, 3000, 2816, False, False),
    (1024, 3000, 2048, False, False),
    (1024, 3000, 2560, False, False),
    (1024, 3000, 1536, False, False),
    (512, 2, 512, False, False),
    (1024, 2, 512, False, False),
    (512, 6000, 2816, False, False),
    (512, 6000, 2048, False, False),
    (512, 6000, 2560, False, False),
    (512, 6000, 1536, False, False),
    (1024, 6000, 2816, False, False),
    (1024, 6000, 2048, False, False),
    (1024, 6000, 2560, False, False),
    (1024, 6000, 1536, False, False),
    (512, 4, 512, False, False),
    (1024, 4, 512, False, False),
)

_DB_GEMM_DEVICE: tuple[_DbGemm, ...] = (
    (5124, 700, 2048, False, False),
    (35, 700, 2048, False, False),
    (3072, 1, 1024, False, False),
    (64, 1, 1216, False, False),
    (3072, 1500, 1024, False, False),
    (128, 1500, 1280, False, False),
    (3072, 1500, 128, False, False),
    (128, 1, 1024, False, False),
    (3072, 1, 128, False, False),
    (176, 1500, 1408, False, False),
    (4224, 1500, 176, False, False),
    (128, 1, 1408, False, False),
    (4224, 1, 128, False, False),
)

# conv_problems.h: inference_server_set / inference_device_set, field order as in _DbConv.
_DB_CONV_SERVER: tuple[_DbConv, ...] = (
    (700, 161, 1, 1, 32, 20, 5, 0, 0, 2, 2),
    (700, 161, 1, 2, 32, 20, 5, 0, 0, 2, 2),
    (700, 161, 1, 4, 32, 20, 5, 0, 0, 2, 2),
    (341, 79, 32, 1, 32, 10, 5, 0, 0, 2, 2),
    (341, 79, 32, 2, 32, 10, 5, 0, 0, 2, 2),
    (341, 79, 32, 4, 32, 10, 5, 0, 0, 2, 2),
    (480, 48, 1, 1, 16, 3, 3, 1, 1, 1, 1),
    (240, 24, 16, 1, 32, 3, 3, 1, 1, 1, 1),
    (120, 12, 32, 1, 64, 3, 3, 1, 1, 1, 1),
    (60, 6, 64, 1, 128, 3, 3, 1, 1, 1, 1),
    (108, 108, 3, 1, 64, 3, 3, 1, 1, 2, 2),
    (54, 54, 64, 1, 64, 3, 3, 1, 1, 1, 1),
    (27, 27, 128, 1, 128, 3, 3, 1, 1, 1, 1),
    (14, 14, 128, 1, 256, 3, 3, 1, 1, 1, 1),
    (7, 7, 256, 1, 512, 3, 3, 1, 1, 1, 1),
    (224, 224, 3, 1, 64, 3, 3, 1, 1, 1, 1),
    (112, 112, 64, 1, 128, 3, 3, 1, 1, 1, 1),
    (56, 56, 128, 1, 256, 3, 3, 1, 1, 1, 1),
    (28, 28, 256, 1, 512, 3, 3, 1, 1, 1, 1),
    (14, 14, 512, 1, 512, 3, 3, 1, 1, 1, 1),
    (7, 7, 512, 1, 512, 3, 3, 1, 1, 1, 1),
    (224, 224, 3, 2, 64, 3, 3, 1, 1, 1, 1),
    (112, 112, 64, 2, 128, 3, 3, 1, 1, 1, 1),
    (56, 56, 128, 2, 256, 3, 3, 1, 1, 1, 1),
    (28, 28, 256, 2, 512, 3, 3, 1, 1, 1, 1),
    (14, 14, 512, 2, 512, 3, 3, 1, 1, 1, 1),
    (7, 7, 512, 2, 512, 3, 3, 1, 1, 1, 1),
    (224, 224, 3, 1, 64, 7, 7, 3, 3, 2, 2),
    (28, 28, 192, 1, 32, 5, 5, 2, 2, 1, 1),
    (28, 28, 192, 1, 64, 1, 1, 0, 0, 1, 1),
    (14, 14, 512, 1, 48, 5, 5, 2, 2, 1, 1),
    (14, 14, 512, 1, 192, 1, 1, 0, 0, 1, 1),
    (7, 7, 832, 1, 256, 1, 1, 0, 0, 1, 1),
    (7, 7, 832, 1, 128, 5, 5, 2, 2, 1, 1),
    (224, 224, 3, 2, 64, 7, 7, 3, 3, 2, 2),
    (28, 28, 192, 2, 32, 5, 5, 2, 2, 1, 1),
    (28, 28, 192, 2, 64, 1, 1, 0, 0, 1, 1),
    (14, 14, 512, 2, 48, 5, 5, 2, 2, 1, 1),
    (14, 14, 512, 2, 192, 1, 1, 0, 0, 1, 1),
    (7, 7, 832, 2, 256, 1, 1, 0, 0, 1, 1),
    (7, 7, 832, 2, 128, 5, 5, 2, 2, 1, 1),
    (56, 56, 64, 1, 64, 3, 3, 1, 1, 1, 1),
    (56, 56, 64, 1, 256, 1, 1, 0, 0, 2, 2),
    (28, 28, 128, 1, 128, 3, 3, 1, 1, 1, 1),
    (28, 28, 128, 1, 512, 1, 1, 0, 0, 2, 2),
    (14, 14, 256, 1, 256, 1, 1, 0, 0, 1, 1),
    (14, 14, 256, 1, 256, 3, 3, 1, 1, 1, 1),
    (14, 14, 256, 1, 1024, 1, 1, 0, 0, 2, 2),
    (7, 7, 512, 1, 512, 1, 1, 0, 0, 1, 1),
    (7, 7, 2048, 1, 512, 1, 1, 3, 3, 2, 2),
    (56, 56, 64, 2, 64, 3, 3, 1, 1, 1, 1),
    (56, 56, 64, 2, 256, 1, 1, 0, 0, 2, 2),
    (28, 28, 128, 2, 128, 3, 3, 1, 1, 1, 1),
    (28, 28, 128, 2, 512, 1, 1, 0, 0, 2, 2),
    (14, 14, 256, 2, 256, 1, 1, 0, 0, 1, 1),
    (14, 14, 256, 2, 256, 3, 3, 1, 1, 1, 1),
    (14, 14, 256, 2, 1024, 1, 1, 0, 0, 2, 2),
    (7, 7, 512, 2, 512, 1, 1, 0, 0, 1, 1),
    (7, 7, 2048, 2, 512, 1, 1, 3, 3, 2, 2),
    (700, 161, 1, 1, 64, 5, 5, 1, 1, 2, 2),
    (350, 80, 64, 1, 64, 3, 3, 1, 1, 1, 1),
    (350, 80, 64, 1, 128, 5, 5, 1, 1, 2, 2),
    (175, 40, 128, 1, 128, 3, 3, 1, 1, 1, 1),
    (175, 40, 128, 1, 256, 5, 5, 1, 1, 2, 2),
    (84, 20, 256, 1, 256, 3, 3, 1, 1, 1, 1),
    (84, 20, 256, 1, 512, 5, 5, 1, 1, 2, 2),
    (42, 10, 512, 1, 512, 3, 3, 1, 1, 1, 1),
    (700, 161, 1, 2, 64, 5, 5, 1, 1, 2, 2),
    (350, 80, 64, 2, 64, 3, 3, 1, 1, 1, 1),
    (350, 80, 64, 2, 128, 5, 5, 1, 1, 2, 2),
    (175, 40, 128, 2, 128, 3, 3, 1, 1, 1, 1),
    (175, 40, 128, 2, 256, 5, 5, 1, 1, 2, 2),
    (84, 20, 256, 2, 256, 3, 3, 1, 1, 1, 1),
    (84, 20, 256, 2, 512, 5, 5, 1, 1, 2, 2),
    (42, 10, 512, 2, 512, 3, 3, 1, 1, 1, 1),
    (112, 112, 64, 1, 64, 1, 1, 0, 0, 1, 1),
    (56, 56, 64, 1, 256, 1, 1, 0, 0, 1, 1),
    (56, 56, 256, 1, 64, 1, 1, 0, 0, 1, 1),
    (56, 56, 256, 1, 128, 1, 1, 0, 0, 2, 2),
    (28, 28, 128, 1, 512, 1, 1, 0, 0, 1, 1),
    (28, 28, 512, 1, 128, 1, 1, 0, 0, 1, 1),
    (28, 28, 512, 1, 256, 1, 1, 0, 0, 2, 2),
    (14, 14, 256, 1, 1024, 1, 1, 0, 0, 1, 1),
    (28, 28, 512, 1, 1024, 1, 1, 0, 0, 2, 2),
    (14, 14, 1024, 1, 256, 1, 1, 0, 0, 1, 1),
    (14, 14, 256, 1, 1024, 1, 1, 0, 0, 1, 1),
    (14, 14, 1024, 1, 512, 1, 1, 0, 0, 2, 2),
    (7, 7, 512, 1, 512, 3, 3, 1, 1, 1, 1),
    (7, 7, 512, 1, 2048, 1, 1, 0, 0, 1, 1),
    (14, 14, 1024, 1, 2048, 1, 1, 0, 0, 2, 2),
    (7, 7, 2048, 1, 512, 1, 1, 0, 0, 1, 1),
    (112, 112, 64, 2, 64, 1, 1, 0, 0, 1, 1),
    (56, 56, 64, 2, 256, 1, 1, 0, 0, 1, 1),
    (56, 56, 256, 2, 64, 1, 1, 0, 0, 1, 1),
    (56, 56, 256, 2, 128, 1, 1, 0, 0, 2, 2),
    (28, 28, 128, 2, 512, 1, 1, 0, 0, 1, 1),
    (28, 28, 512, 2, 128, 1, 1, 0, 0, 1, 1),
    (28, 28, 512, 2, 256, 1, 1, 0, 0, 2, 2),
    (14, 14, 256, 2, 1024, 1, 1, 0, 0, 1, 1),
    (28, 28, 512, 2, 1024, 1, 1, 0, 0, 2, 2),
    (14, 14, 1024, 2, 256, 1, 1, 0, 0, 1, 1),
    (14, 14, 256, 2, 1024, 1, 1, 0, 0, 1, 1),
    (14, 14, 1024, 2, 512, 1, 1, 0, 0, 2, 2),
    (7, 7, 512, 2, 512, 3, 3, 1, 1, 1, 1),
    (7, 7, 512, 2, 2048, 1, 1, 0, 0, 1, 1),
    (14, 14, 1024, 2, 2048, 1, 1, 0, 0, 2, 2),
    (7, 7, 2048, 2, 512, 1, 1, 0, 0, 1, 1),
)

_DB_CONV_DEVICE: tuple[_DbConv, ...] = (
    (112, 112, 64, 1, 64, 1, 1, 0, 0, 1, 1),
    (56, 56, 64, 1, 256, 1, 1, 0, 0, 1, 1),
    (56, 56, 256, 1, 64, 1, 1, 0, 0, 1, 1),
    (56, 56, 256, 1, 128, 1, 1, 0, 0, 2, 2),
    (28, 28, 128, 1, 512, 1, 1, 0, 0, 1, 1),
    (28, 28, 512, 1, 128, 1, 1, 0, 0, 1, 1),
    (28, 28, 512, 1, 256, 1, 1, 0, 0, 2, 2),
    (14, 14, 256, 1, 1024, 1, 1, 0, 0, 1, 1),
    (28, 28, 512, 1, 1024, 1, 1, 0, 0, 2, 2),
    (14, 14, 1024, 1, 256, 1, 1, 0, 0, 1, 1),
    (14, 14, 256, 1, 1024, 1, 1, 0, 0, 1, 1),
    (14, 14, 1024, 1, 512, 1, 1, 0, 0, 2, 2),
    (7, 7, 512, 1, 512, 3, 3, 1, 1, 1, 1),
    (7, 7, 512, 1, 2048, 1, 1, 0, 0, 1, 1),
    (14, 14, 1024, 1, 2048, 1, 1, 0, 0, 2, 2),
    (7, 7, 2048, 1, 512, 1, 1, 0, 0, 1, 1),
)


def _deepbench_gemm(row: _DbGemm, label: str, index: int) -> GemmShape:
    m, n, k, a_t, b_t = row
    suffix = ("T" if a_t else "N") + ("T" if b_t else "N")
    return GemmShape(m, n, k, a_t, b_t, name=f"{label}_gemm{index:03d}_{m}x{n}x{k}_{suffix}")


def _deepbench_conv(row: _DbConv, label: str, index: int) -> ConvShape:
    w, h, c, n, k, s, r, pad_w, pad_h, wstride, hstride = row
    return ConvShape(
        *(n, c, h, w, k, r, s),
        stride=(hstride, wstride),
        padding=(pad_h, pad_w, pad_h, pad_w),
        name=f"{label}_conv{index:03d}_n{n}_c{c}_{h}x{w}_k{k}_{r}x{s}_s{hstride}x{wstride}",
    )


def deepbench_gemms(device: bool = False) -> list[GemmShape]:
    """DeepBench's inference GEMMs: the server set, or the (smaller) device set."""
    rows, label = (_DB_GEMM_DEVICE, "db-device") if device else (_DB_GEMM_SERVER, "db-server")
    return [_deepbench_gemm(row, label, i) for i, row in enumerate(rows)]


def deepbench_convs(device: bool = False) -> list[ConvShape]:
    """DeepBench's inference convs, header order and duplicates kept (names carry the index)."""
    rows, label = (_DB_CONV_DEVICE, "db-device") if device else (_DB_CONV_SERVER, "db-server")
    return [_deepbench_conv(row, label, i) for i, row in enumerate(rows)]


# --------------------------------------------------------------------------------------
# ResNet-50 (v1.5 / torchvision layout), derived from the architecture
# --------------------------------------------------------------------------------------

RESNET50_IMAGE_SIZE = 224
RESNET50_CLASSES = 1000
_RESNET50_STEM_CHANNELS = 64
_RESNET50_EXPANSION = 4
# (stage name, bottleneck blocks, bottleneck width, stride of the first block)
_RESNET50_STAGES: tuple[tuple[str, int, int, int], ...] = (
    ("layer1", 3, 64, 1),
    ("layer2", 4, 128, 2),
    ("layer3", 6, 256, 2),
    ("layer4", 3, 512, 2),
)


def _resnet50_layers(batch: int) -> list[ConvShape]:
    """All 53 conv layers of ResNet-50 in network order, one entry per layer (count=1)."""
    _check_positive("resnet50", batch=batch)
    layers: list[ConvShape] = []

    def conv(name: str, c: int, size: int, k: int, kernel: int, stride: int) -> int:
        pad = kernel // 2
        shape = ConvShape(
            *(batch, c, size, size, k, kernel, kernel),
            stride=(stride, stride),
            padding=(pad, pad, pad, pad),
            name=f"resnet50_{name}",
        )
        layers.append(shape)
        return shape.out_h

    size = conv("conv1", 3, RESNET50_IMAGE_SIZE, _RESNET50_STEM_CHANNELS, 7, 2)
    size = (size + 2 * 1 - 3) // 2 + 1  # 3x3/2 max pool, padding 1: 112 -> 56
    channels = _RESNET50_STEM_CHANNELS
    for stage, blocks, width, first_stride in _RESNET50_STAGES:
        out_channels = width * _RESNET50_EXPANSION
        for block in range(blocks):
            stride = first_stride if block == 0 else 1
            prefix = f"{stage}.{block}"
            conv(f"{prefix}.conv1", channels, size, width, 1, 1)
            out_size = conv(f"{prefix}.conv2", width, size, width, 3, stride)
            conv(f"{prefix}.conv3", width, out_size, out_channels, 1, 1)
            if block == 0:  # projection shortcut: channels change (and size, unless layer1)
                conv(f"{prefix}.downsample", channels, size, out_channels, 1, stride)
            channels, size = out_channels, out_size
    return layers


def _dedupe(shapes: Iterable[ConvShape]) -> list[ConvShape]:
    """Merge identical problems (all fields but name/count), summing counts, first name kept."""
    merged: dict[ConvShape, ConvShape] = {}
    for shape in shapes:
        key = replace(shape, name="-", count=1)
        if key in merged:
            first = merged[key]
            merged[key] = replace(first, count=first.count + shape.count)
        else:
            merged[key] = shape
    return list(merged.values())


def resnet50_convs(batch: int = 1) -> list[ConvShape]:
    """Every distinct ResNet-50 conv at ``batch``; ``count`` says how often each occurs.

    53 layers collapse to 23 problems. An entry keeps the name of its first occurrence, so
    ``layer1.0.conv3`` (count 4) also stands for ``layer1.0.downsample``, which has the
    same shape (64 -> 256 channels, 1x1, stride 1, at 56x56).
    """
    return _dedupe(_resnet50_layers(batch))


def resnet50_3x3(batch: int = 1) -> list[ConvShape]:
    """Only the 3x3 convs of ResNet-50 (the layers the project's perf target is stated on)."""
    return [shape for shape in resnet50_convs(batch) if shape.r == 3 and shape.s == 3]


def resnet50_fc(batch: int = 1) -> GemmShape:
    """The classifier: [batch, 2048] @ W^T, W stored [1000, 2048] as in torchvision's Linear."""
    _check_positive("resnet50", batch=batch)
    channels = _RESNET50_STAGES[-1][2] * _RESNET50_EXPANSION
    return GemmShape(batch, RESNET50_CLASSES, channels, trans_b=True, name="resnet50_fc")


# --------------------------------------------------------------------------------------
# "small": seconds on a 2-core CPU, yet covering every conv feature the backends handle
# --------------------------------------------------------------------------------------


def small_gemms(batch: int = 1) -> list[GemmShape]:
    """Tiny GEMMs, both transposition flags and an FC-like skinny one (m = ``batch``)."""
    return [
        square_gemm(64),
        square_gemm(256),
        GemmShape(512, 512, 512, trans_b=True, name="gemm_512^3_NT"),
        GemmShape(128, 64, 256, trans_a=True, name="gemm_128x64x256_TN"),
        GemmShape(batch, 1000, 2048, name=f"fc_{batch}x1000x2048"),
    ]


def small_convs(batch: int = 1) -> list[ConvShape]:
    """Tiny convs: 3x3, 1x1, grouped, dilated and stride-2 with asymmetric padding."""
    _check_positive("small", batch=batch)
    n = batch
    return [
        ConvShape(n, 3, 32, 32, 16, 3, 3, padding=(1, 1, 1, 1), name="small_first_3x3"),
        ConvShape(n, 64, 56, 56, 64, 3, 3, padding=(1, 1, 1, 1), name="small_3x3_c64"),
        ConvShape(n, 64, 56, 56, 256, 1, 1, name="small_1x1_c64_k256"),
        ConvShape(n, 32, 28, 28, 64, 3, 3, padding=(1, 1, 1, 1), groups=4, name="small_grouped_g4"),
        ConvShape(
            *(n, 16, 32, 32, 16, 3, 3),
            padding=(2, 2, 2, 2),
            dilation=(2, 2),
            name="small_dilated_d2",
        ),
        # TF "SAME" padding at stride 2: the extra row/column goes at the end. The input
        # is not square so that an h/w mix-up changes the output shape.
        ConvShape(
            *(n, 16, 32, 24, 32, 3, 3),
            stride=(2, 2),
            padding=(0, 0, 1, 1),
            name="small_s2_asym_pad",
        ),
    ]


# --------------------------------------------------------------------------------------


def get_problem_set(name: str, batch: int = 1) -> tuple[list[GemmShape], list[ConvShape]]:
    """The (GEMMs, convs) behind ``--shapes NAME``.

    ``batch`` sets N for ``resnet50`` and ``small``; the DeepBench lists fix their own N
    (1, 2 or 4 in the header) and ignore it.
    """
    from hwbench.errors import ArgumentError

    _check_positive("get_problem_set", batch=batch)
    if name == "small":
        return small_gemms(batch), small_convs(batch)
    if name == "deepbench":
        return deepbench_gemms(), deepbench_convs()
    if name == "deepbench-device":
        return deepbench_gemms(device=True), deepbench_convs(device=True)
    if name == "resnet50":
        return [resnet50_fc(batch)], resnet50_convs(batch)
    if name == "headline":  # the README's side-by-side figures
        return [square_gemm(2048)], resnet50_3x3(batch)
    raise ArgumentError(
        f"unknown problem set for `shapes`: {name!r}; valid names are {', '.join(PROBLEM_SETS)}"
    )
