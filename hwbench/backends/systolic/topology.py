"""Layers as the array sees them, and SCALE-Sim's topology CSVs.

Every convolution or matrix product reaches the array as one GEMM per group,
``out[m × n] = A[m × k] @ B[k × n]``: ``m`` output pixels (times the batch), ``k`` the
filter taps times the input channels of a group, ``n`` the filters of a group — the
im2col lowering of ``hwbench.kernels.im2col``. ``Layer`` keeps those three numbers plus
what the memory model needs (the distinct input bytes, which im2col would repeat).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.files import read_text

CONV_HEADER = ("layer name", "ifmap height", "ifmap width", "filter height", "filter width",
               "channels", "num filter", "strides")
GEMM_HEADER = ("m", "n", "k")


@dataclass(frozen=True)
class Layer:
    """One layer: ``groups`` GEMMs of ``m × k`` by ``k × n`` int8 operands.

    ``ifmap_bytes``: the distinct int8 input activations of all groups (an im2col'd input
    repeats them; the buffers and DRAM hold each once). 0 means ``m·k·groups`` (a GEMM).
    """

    name: str
    m: int
    k: int
    n: int
    groups: int = 1
    ifmap_bytes: int = 0
    kind: str = "gemm"
    geometry: str = ""

    def __post_init__(self) -> None:
        for field in ("m", "k", "n", "groups", "ifmap_bytes"):
            value = getattr(self, field)
            if (not isinstance(value, (int, np.integer)) or isinstance(value, bool)
                    or value < (0 if field == "ifmap_bytes" else 1)):
                raise ArgumentError(f"layer {self.name!r}: field '{field}' must be a positive "
                                    f"integer, got {value!r}")
            object.__setattr__(self, field, int(value))
        if not self.ifmap_bytes:
            object.__setattr__(self, "ifmap_bytes", self.m * self.k * self.groups)

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n * self.groups

    @property
    def weight_bytes(self) -> int:
        return self.k * self.n * self.groups

    @property
    def output_elements(self) -> int:
        return self.m * self.n * self.groups


@dataclass(frozen=True)
class VectorOp:
    """Work for the vector unit (pooling, softmax, add, ...) or the activation unit
    (requantization, Relu, the sigmoid table): ``elements`` results at
    ``ops_per_element`` unit operations each."""

    name: str
    op: str
    elements: int
    ops_per_element: int = 1
    unit: str = "vector"

    @property
    def macs(self) -> int:
        return 0


# The vector and activation units' work per result, by op (pooling, LRN and the global
# average pool pass their window instead): which unit, and unit operations per result.
UNIT_OPS: dict[str, tuple[str, int]] = {
    "relu": ("activation", 1), "sigmoid": ("activation", 1),  # the sigmoid table: one lookup
    "quantize_linear": ("activation", 1), "dequantize_linear": ("activation", 1),
    "quantize": ("vector", 1), "sigmoid_backward": ("vector", 2),
    "softmax": ("vector", 4),  # max, exp, sum, divide
    "add": ("vector", 1), "mul": ("vector", 1), "concat": ("vector", 1),
    "transpose": ("vector", 1),
}


def vector_op(op: str, elements: int, ops_per_element: int | None = None) -> VectorOp:
    """``op``'s work on ``elements`` results, on the unit ``UNIT_OPS`` names."""
    unit, default = UNIT_OPS.get(op, ("vector", 1))
    return VectorOp(op, op, int(elements),
                    default if ops_per_element is None else int(ops_per_element), unit)


def conv_layer(name: str, ifmap_h: int, ifmap_w: int, filter_h: int, filter_w: int,
               channels: int, filters: int, stride_h: int = 1, stride_w: int | None = None,
               *, batch: int = 1, groups: int = 1, padding: tuple[int, int, int, int] = (0,) * 4,
               dilation: tuple[int, int] = (1, 1), ceil_mode: bool = False) -> Layer:
    """A convolution with ONNX Conv geometry. ``ceil_mode``: SCALE-Sim's, whose output
    has ``ceil((H - F + S) / S)`` rows, a last window hanging over the edge counted too
    (AlexNet's 224-pixel Conv1 with 11x11/4 filters: 55x55 outputs, not ONNX's 54x54)."""
    stride_w = stride_h if stride_w is None else stride_w
    span_h = dilation[0] * (filter_h - 1) + 1
    span_w = dilation[1] * (filter_w - 1) + 1
    rounding = stride_h - 1 if ceil_mode else 0
    out_h = (ifmap_h + padding[0] + padding[2] - span_h + rounding) // stride_h + 1
    rounding = stride_w - 1 if ceil_mode else 0
    out_w = (ifmap_w + padding[1] + padding[3] - span_w + rounding) // stride_w + 1
    if out_h < 1 or out_w < 1:
        raise ArgumentError(f"layer {name!r}: a {filter_h}x{filter_w} filter does not fit a "
                            f"{ifmap_h}x{ifmap_w} input")
    geometry = (f"{ifmap_h}x{ifmap_w}x{channels} * {filter_h}x{filter_w}/{stride_h}"
                f" -> {out_h}x{out_w}x{filters}" + (f" g{groups}" if groups > 1 else ""))
    return Layer(name, m=batch * out_h * out_w, k=filter_h * filter_w * (channels // groups),
                 n=filters // groups, groups=groups,
                 ifmap_bytes=batch * ifmap_h * ifmap_w * channels, kind="conv",
                 geometry=geometry)


def gemm_layer(name: str, m: int, k: int, n: int) -> Layer:
    return Layer(name, m=m, k=k, n=n, kind="gemm", geometry=f"{m}x{k} @ {k}x{n}")


@dataclass(frozen=True)
class Topology:
    name: str
    layers: list[Layer]
    kind: str  # "conv" or "gemm": which of SCALE-Sim's two formats it was read from
    source: str = ""


def _cells(row: list[str]) -> list[str]:
    return [cell.strip() for cell in row]


def read_topology(path: str | Path) -> Topology:
    """A SCALE-Sim topology CSV, told apart by its header: convolutions (``Layer name,
    IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
    Strides,``) or GEMMs (``name, M, N, K,``). Blank rows and extra trailing columns are
    skipped, as SCALE-Sim's own files have them; output sizes round up as SCALE-Sim's do
    (``conv_layer``'s ``ceil_mode``); a layer named with ``DP`` is depthwise (one group per
    channel), as SCALE-Sim reads it. Errors name the file, line and field.
    """
    path = Path(path)
    text = read_text(path, "topology", encoding="utf-8-sig")
    rows = [(number, _cells(row)) for number, row in
            enumerate(csv.reader(text.splitlines()), start=1)]
    rows = [(number, cells) for number, cells in rows if any(cells)]
    if not rows:
        raise ArgumentError(f"{path}: empty topology file")
    header_line, header = rows[0]
    lowered = tuple(cell.lower() for cell in header)
    if lowered[:8] == CONV_HEADER:
        kind, names = "conv", [h for h in header[1:8]]
    elif len(lowered) >= 4 and lowered[1:4] == GEMM_HEADER:
        kind, names = "gemm", [h for h in header[1:4]]
    else:
        raise ArgumentError(
            f"{path}:{header_line}: unrecognized header {','.join(header)!r}; expected "
            f"SCALE-Sim's convolution header 'Layer name, IFMAP Height, IFMAP Width, Filter "
            f"Height, Filter Width, Channels, Num Filter, Strides,' or GEMM 'name, M, N, K,'")
    layers = []
    for number, cells in rows[1:]:
        values = _row_values(path, number, cells, names)
        name = cells[0]
        if kind == "gemm":
            m, n, k = values
            layers.append(gemm_layer(name, m=m, k=k, n=n))
            continue
        ih, iw, fh, fw, channels, filters, stride = values
        for field, f, i in (("Filter Height", fh, ih), ("Filter Width", fw, iw)):
            if f > i:
                raise ArgumentError(f"{path}:{number}: field '{field}' ({f}) is larger than "
                                    f"the input ({i}) in layer {name!r}")
        groups = channels if "DP" in name else 1
        layers.append(conv_layer(name, ih, iw, fh, fw, channels,
                                 filters * groups if groups > 1 else filters, stride,
                                 groups=groups, ceil_mode=True))
    if not layers:
        raise ArgumentError(f"{path}: no layers after the header")
    return Topology(path.stem, layers, kind, str(path))


def _row_values(path: Path, number: int, cells: list[str], names: list[str]) -> list[int]:
    if not cells[0]:
        raise ArgumentError(f"{path}:{number}: field '{'Layer name'}' is empty")
    values = []
    for i, field in enumerate(names, start=1):
        raw = cells[i] if i < len(cells) else ""
        try:
            value = int(raw)
        except ValueError:
            raise ArgumentError(f"{path}:{number}: field '{field}' must be a positive integer, "
                                f"got {raw!r} (layer {cells[0]!r})") from None
        if value < 1:
            raise ArgumentError(f"{path}:{number}: field '{field}' must be a positive integer, "
                                f"got {value} (layer {cells[0]!r})")
        values.append(value)
    return values


def conv_problem_layer(p, name: str = "conv2d") -> Layer:
    """The layer of a validated ``hwbench.kernels.spec.ConvProblem``."""
    return conv_layer(name, p.h, p.w, p.r, p.s, p.c, p.k, p.stride[0], p.stride[1],
                      batch=p.n, groups=p.groups, padding=p.padding, dilation=p.dilation)
