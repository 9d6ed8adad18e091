"""Every ONNX node test hwbench runs, gathered from the kernel-level test modules.

Each ``tests/test_onnx_node*.py`` module that adapts nodes to kernels names its cases in a
module-level ``NODE_TESTS`` dict (op type -> node test names); the graph-level run and the
op registry's coverage check read them all from here, so a new op family's test module
is picked up without editing either.
"""

from __future__ import annotations

import importlib
from pathlib import Path

HERE = Path(__file__).parent


def all_node_tests() -> dict[str, list[str]]:
    """Op type -> node test names, over every module that defines ``NODE_TESTS``."""
    out: dict[str, list[str]] = {}
    for path in sorted(HERE.glob("test_onnx_node*.py")):
        if "\nNODE_TESTS" not in path.read_text():  # e.g. the graph-level run, which reads
            continue                              # these lists (importing it would loop)
        module = importlib.import_module(path.stem)
        for op, names in getattr(module, "NODE_TESTS", {}).items():
            out.setdefault(op, []).extend(n for n in names if n not in out.get(op, []))
    return out
