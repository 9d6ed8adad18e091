"""``OpRegistry``: op type -> ``OpDef``, and the questions the graph layer asks of it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from hwbench.errors import ArgumentError
from hwbench.graph.ir import Node
from hwbench.graph.ops.opdef import DEFAULT_DOMAINS, OpDef, qualified_name

# Other producers' domains whose ops a model file may hold (onnxruntime's quantizer)
FILE_DOMAINS = ("com.microsoft",)


class OpRegistry(Mapping[str, OpDef]):
    """Op definitions keyed by qualified name (``Graph.op_counts``' spelling).

    ``register`` refuses an incomplete definition or a second one for the same op, so
    every entry can be relied on by every reader; ``copy`` gives a throwaway registry
    (for trying out an op without changing ``OP_DEFS``).
    """

    def __init__(self, defs: Iterable[OpDef] = ()) -> None:
        self._defs: dict[str, OpDef] = {}
        for d in defs:
            self.register(d)

    def register(self, d: OpDef) -> OpDef:
        if not isinstance(d, OpDef):
            raise ArgumentError(f"register: expected an OpDef, got {type(d).__name__}")
        if d.qualified_name in self._defs:
            raise ArgumentError(f"register: op {d.qualified_name!r} is defined already")
        problems = d.problems()
        if problems:
            raise ArgumentError(f"register: op {d.qualified_name!r}: {'; '.join(problems)}")
        self._defs[d.qualified_name] = d
        return d

    def copy(self) -> OpRegistry:
        return OpRegistry(self._defs.values())

    def __getitem__(self, name: str) -> OpDef:
        return self._defs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._defs)

    def __len__(self) -> int:
        return len(self._defs)

    def of(self, node: Node) -> OpDef | None:
        """The definition of ``node``'s op type (in its domain), if there is one."""
        return self._defs.get(qualified_name(node.op_type, node.domain))

    def executable(self) -> set[str]:
        """Op types the executor runs."""
        return {name for name, d in self._defs.items() if d.run is not None}

    def lowered(self) -> set[str]:
        """Op types the passes remove (Dropout, BatchNormalization)."""
        return {name for name, d in self._defs.items() if d.lowered_by is not None}

    def supported(self) -> set[str]:
        """Every op type a model file may contain: ONNX's ops defined here (hwbench's own
        fused ops are made by its passes, never read from a file)."""
        return {name for name, d in self._defs.items()
                if d.domain in DEFAULT_DOMAINS or d.domain in FILE_DOMAINS}

    def integer(self) -> set[str]:
        """Op types that compute in integer arithmetic (a graph holding one is int8)."""
        return {name for name, d in self._defs.items() if d.integer}
