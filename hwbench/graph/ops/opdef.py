"""``OpDef``: everything hwbench knows about one op type, in one record.

An op type's shape rule, its host (constant-folding) evaluation, how it runs on a
backend's kernels, its int8 form and its FLOP and byte counts sit side by side in one
entry of ``hwbench.graph.ops.OP_DEFS``; shape inference, the passes, the executor,
quantization and the model statistics all read that entry, so adding an op is adding one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.graph.ir import Graph, Node

Shape = tuple[int, ...]
DEFAULT_DOMAINS = ("", "ai.onnx")


def qualified_name(op_type: str, domain: str = "") -> str:
    """An op type as ``Graph.op_counts`` names it: domain-qualified unless ONNX's own."""
    return op_type if domain in DEFAULT_DOMAINS else f"{domain}:{op_type}"


@dataclass
class Step:
    """One node, ready to run: its op function and statically known facts about it."""

    node: Node
    fn: Callable
    in_shapes: list[Shape]
    out_shapes: list[Shape]
    opset: int

    @property
    def kind(self) -> str:
        """The op type as ``Graph.op_counts`` names it (domain-qualified unless ONNX's)."""
        return qualified_name(self.node.op_type, self.node.domain)


@dataclass(frozen=True)
class Int8Weights:
    """A float node's constant weights as the QLinearConv replacing it takes them."""

    weight: np.ndarray  # float32, (out channels, in channels / groups, kh, kw)
    bias: np.ndarray | None  # one value per output channel, or None
    attrs: dict[str, Any]  # QLinearConv's attributes
    as_1x1: bool  # the node reads (N, K): viewed as (N, K, 1, 1) around a 1×1 conv


# f(node, shapes of its named inputs, graph) -> shapes of its outputs
ShapeRule = Callable[[Node, list[Shape], Graph], Sequence[Shape]]
# f(node, constant inputs (None for an omitted one), opset) -> output values
HostEval = Callable[[Node, list[Any], int], Sequence[Any]]
# f(backend, device inputs (None for an omitted one), step) -> device output(s)
RunOnBackend = Callable[[Any, list[Any], Step], Any]
# f(graph, node) -> its int8 weights, or None where the node stays float
Int8Form = Callable[[Graph, Node], Int8Weights | None]
# f(node, shapes of all its inputs (None for an omitted one)) -> FLOPs of one run
FlopCount = Callable[[Node, list[Any]], int]
# f(node, element types of its inputs (None: unknown)) -> element types of its outputs
TypeRule = Callable[[Node, list[Any]], Sequence[Any]]


@dataclass(frozen=True)
class OpDef:
    """One op type. Which fields it has says what hwbench does with it:

    - ``run`` (with ``shape``): the executor runs it, calling ``kernels`` on the backend
      (listed so that a backend's missing kernels are named before anything runs);
      inputs at ``host_inputs`` stay NumPy values on the host (scales, Reshape targets).
    - ``lowered_by`` (with ``shape``): a pass removes it before the executor sees it.
    - ``host``: constant folding evaluates it with NumPy when all its inputs are
      constants; an op with only ``host`` is refused where an input is computed at run
      time.
    - ``static_shape_host``: ``host`` reads only its input's shape, so constant folding
      evaluates it once that shape is static (Shape, Size of a run-time tensor).
    - ``int8``: the quantization pass may rewrite it as a QLinearConv.
    - ``flops`` (None: no arithmetic worth counting) and ``output_itemsize`` (bytes per
      output value written: 4 for float32, 1 for 8-bit, 0 for a view of its input) feed
      ``hwbench.graph.statistics``.
    """

    name: str
    shape: ShapeRule | None = None
    host: HostEval | None = None
    run: RunOnBackend | None = None
    kernels: tuple[str, ...] = ()
    host_inputs: tuple[int, ...] = ()
    lowered_by: str | None = None
    int8: Int8Form | None = None
    integer: bool = False  # computes in integer arithmetic: its graph is quantized
    flops: FlopCount | None = None
    output_itemsize: int = 4
    domain: str = ""
    # ``host`` reads only its input's shape (Shape, Size): folded as soon as that shape
    # is known statically, even where the input is computed at run time
    static_shape_host: bool = False
    # element types (``hwbench.graph.element_types``): ``out_types`` gives the outputs'
    # (None: input 0's type); ``in_types`` the dtypes its run-time inputs may have, one
    # tuple for all or {position: tuple}, or a function of the node giving either (None:
    # what all its ``kernels`` take, float32 for most); ``same_types``: the position from
    # which all inputs share one type
    out_types: TypeRule | None = None
    in_types: Any = None
    same_types: int | None = None

    @property
    def qualified_name(self) -> str:
        return qualified_name(self.name, self.domain)

    def problems(self) -> list[str]:
        """What makes this definition unusable (empty when it is complete)."""
        out = []
        if self.run is None and self.lowered_by is None and self.host is None:
            out.append("it has no run, lowering or host evaluation: nothing can execute it")
        if (self.run is not None or self.lowered_by is not None) and self.shape is None:
            out.append("it reaches shape inference but has no shape rule")
        if self.run is None and (self.kernels or self.host_inputs):
            out.append("kernels/host_inputs are given but there is no run")
        if self.run is not None and self.lowered_by is not None:
            out.append("it is both run and lowered away")
        if self.output_itemsize not in (0, 1, 2, 4, 8):
            out.append(f"output_itemsize {self.output_itemsize} is no element size")
        return out
