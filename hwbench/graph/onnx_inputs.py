"""The symbolic dimension names of an .onnx file's inputs, read without parsing its weights.

``hwbench run --dim NAME=N`` applies to each selected model that has a dimension ``NAME``;
knowing which do must not cost a full load of every file (a zoo model's weights run to
hundreds of MB). The file is walked at the protobuf wire level: ModelProto's ``graph``
(field 7), inside it GraphProto's ``input`` entries (field 11), each parsed as a
``ValueInfoProto``; every other field, the initializers included, is skipped by its length.
"""

from __future__ import annotations

import mmap
import os

from hwbench.errors import ArgumentError
from hwbench.graph.onnx_import import _onnx, _parse

_MODEL_GRAPH = 7   # ModelProto.graph
_GRAPH_INPUT = 11  # GraphProto.input


def _varint(data, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data, start: int, end: int):
    """(field number, payload start, payload end) of each length-delimited field in
    ``data[start:end]``; the other wire types are skipped."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(data, pos)
            yield number, pos, pos + size
            pos += size
        else:
            raise ValueError(f"wire type {wire} (groups) not expected in an ONNX model")
        if pos > end:
            raise ValueError("a field runs past the end of the file")


def input_symbols(path: str | os.PathLike) -> frozenset[str]:
    """The ``dim_param`` names of the graph inputs in the .onnx file at ``path``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ArgumentError(f"{path}: no such model file")
    onnx = _onnx()
    if path.lower().endswith(".json"):  # onnx reads *.json as JSON: no wire format to walk
        return frozenset(d.dim_param for v in _parse(onnx, path).graph.input
                         for d in v.type.tensor_type.shape.dim if d.dim_param)
    symbols: set[str] = set()
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise ArgumentError(f"{path}: not a valid ONNX model: the file is empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                for number, start, end in _fields(data, 0, len(data)):
                    if number != _MODEL_GRAPH:
                        continue
                    for field, a, b in _fields(data, start, end):
                        if field == _GRAPH_INPUT:
                            info = onnx.ValueInfoProto.FromString(data[a:b])
                            symbols.update(d.dim_param for d in
                                           info.type.tensor_type.shape.dim if d.dim_param)
            except Exception as exc:  # noqa: BLE001 - any malformation: one clear error
                raise ArgumentError(f"{path}: not a valid ONNX model: {exc}") from None
    return frozenset(symbols)
