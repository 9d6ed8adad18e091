"""Element-type rules for ``OpDef.out_types`` and the dtype sets for ``OpDef.in_types``
(``hwbench.graph.element_types`` reads them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.graph.ir import Node
from hwbench.kernels import spec

F32, I32, I64 = np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.int64)
BOOL, U8, I8 = np.dtype(np.bool_), np.dtype(np.uint8), np.dtype(np.int8)
NUMBERS = (F32, I32, I64)  # the arithmetic and compare kernels: float32 and exact integers
LAYOUT = tuple(spec.LAYOUT_DTYPES)  # what the layout kernels move


def const_type(*dtypes: Any):
    """Outputs of fixed types (one given: every output has it)."""
    types = [np.dtype(t) for t in dtypes]
    return lambda node, ins: types if len(types) > 1 else types * max(len(node.outputs), 1)


def input_type(i: int, default: Any = None):
    """The output has input ``i``'s type (``default`` where that input is omitted)."""
    fallback = None if default is None else np.dtype(default)
    return lambda node, ins: [ins[i] if i < len(ins) and ins[i] is not None else fallback]


def attr_type(node: Node, onnx_dtypes: dict[int, Any], attr: str) -> Any:
    value = node.attrs.get(attr)
    return np.dtype(onnx_dtypes[value]) if value in onnx_dtypes else None


def array_dtype(x: Any, default: Any = None) -> np.dtype | None:
    """The NumPy dtype of any backend's (or a peer's) array: ``torch.float32`` and the like
    are read by name, since NumPy cannot interpret them; ``default`` where ``x`` has none."""
    dtype = getattr(x, "dtype", default)
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(str(dtype).rpartition(".")[2])
