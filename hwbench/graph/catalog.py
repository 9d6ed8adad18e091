"""What hwbench runs, per op type and backend, read from the op registry and the backends.

The supported-ops table of docs/ops.md is this module's output (rendered by
``python -m hwbench.harness.results.doc_tables``), never typed: an op is listed as running
on a backend exactly when the executor would accept it there — the backend class
implements every kernel the op's definition names (``executor.lacks_kernel``, the same
test a ``Session`` makes before anything runs).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwbench.backends import REGISTRY, backend_class
from hwbench.graph.executor import lacks_kernel
from hwbench.graph.ops import FAMILIES, OpDef

# Backends in the order the table lists them.
BACKENDS = tuple(REGISTRY)


@dataclass(frozen=True)
class OpEntry:
    """One op type as the table shows it."""

    name: str  # qualified: "com.microsoft:QGemm" for another domain's op
    family: str  # the graph/ops module that defines it
    how: str  # "kernels a, b", "folded at load", "removed by <pass>"
    backends: tuple[str, ...]  # where it runs (none for folded or removed ops)
    on_host: bool  # folded or removed before any backend sees it


def _how(d: OpDef) -> str:
    if d.run is not None:
        kernels = ", ".join(f"`{k}`" for k in d.kernels) or "no kernel (a view or host op)"
        return f"kernels {kernels}" if d.kernels else kernels
    if d.lowered_by is not None:
        return f"removed by `{d.lowered_by}`"
    return "folded at load (its inputs must be constants)"


def _runs_on(d: OpDef) -> tuple[str, ...]:
    if d.run is None:  # removed or folded before any backend sees it
        return ()
    return tuple(name for name in BACKENDS
                 if not any(lacks_kernel(backend_class(name), k) for k in d.kernels))


def entries() -> list[OpEntry]:
    """Every op the registry defines, by family, then name."""
    out = []
    for family in FAMILIES:
        label = family.__name__.rsplit(".", 1)[-1]
        for d in sorted(family.DEFS, key=lambda d: d.qualified_name):
            out.append(OpEntry(d.qualified_name, label, _how(d), _runs_on(d), d.run is None))
    return out


def markdown() -> list[str]:
    """The table's lines: op, family, how it runs, and a mark per backend: ✓ runs there,
    — lacks a kernel, · never reaches a backend (folded at load, or removed by a pass)."""
    lines = ["| op | family | how it runs | " + " | ".join(BACKENDS) + " |",
             "| --- | --- | --- | " + " | ".join(":---:" for _ in BACKENDS) + " |"]
    for e in entries():
        marks = " | ".join("·" if e.on_host else "✓" if b in e.backends else "—"
                           for b in BACKENDS)
        lines.append(f"| `{e.name}` | {e.family} | {e.how} | {marks} |")
    return lines
