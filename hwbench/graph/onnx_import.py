"""ONNX (opset ≥ 9) -> hwbench's IR, and back (so onnxruntime can run the same weights).

Model files are untrusted input:
- the protobuf is parsed without following external-data references
  (``load_external_data=False``); external tensors are then read here, and only from
  files whose real path lies inside the model's own folder (``..``, absolute paths and
  symlinks out of the folder are refused), within the file's bounds;
- a truncated or garbage file, or one the ONNX checker rejects, raises ``ArgumentError``
  naming the file and the reason;
- nothing is unpickled or evaluated: tensors become NumPy arrays through
  ``onnx.numpy_helper``;
- every op type hwbench cannot run is named, with counts, in one ``UnsupportedError``
  before anything runs.

``onnx`` is imported lazily: ``import hwbench`` works without it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import Graph, Node, ValueInfo, check_op_types, frozen
from hwbench.graph.ops import OP_DEFS
from hwbench.graph.shape_inference import FileDim, check_dim_values, fix_input_dims

MIN_OPSET = 9
DEFAULT_DOMAINS = ("", "ai.onnx")


def _onnx():
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UnsupportedError(
            "reading ONNX models needs the onnx package (pip install 'hwbench[test]' "
            f"or pip install onnx): {exc}") from exc
    return onnx


def load_onnx(source: Any, supported: set[str] | None = None, *, batch: int | None = None,
              dims: dict[str, int] | None = None) -> Graph:
    """An ONNX ``ModelProto`` or a path to an .onnx file -> ``Graph``.

    ``supported``: op types allowed (default: every op the passes and the executor
    handle); anything else is refused in one message. Inputs whose dimensions the file
    leaves symbolic get static ones here: the first from ``batch`` (or ``dims``), the
    others by name from ``dims`` (``shape_inference.fix_input_dims``).
    """
    onnx = _onnx()
    dims = check_dim_values(batch, dims)
    if isinstance(source, onnx.ModelProto):
        model, folder, label = source, None, f"model {source.graph.name or '<unnamed>'!r}"
        path = ""
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        label = path
        if not os.path.isfile(path):
            raise ArgumentError(f"{path}: no such model file")
        model = _parse(onnx, path)
        folder = os.path.dirname(os.path.abspath(path))
    else:
        raise ArgumentError(f"argument 'model' must be a path or an onnx.ModelProto, "
                            f"got {type(source).__name__}")
    external = _external_refs(onnx, model, folder, label)  # validated before anything else
    try:
        # A path lets the checker see external data without our reading it in first (the
        # checker serializes a ModelProto whole: slow for hundreds of MB).
        onnx.checker.check_model(path if folder is not None else model)
    except onnx.checker.ValidationError as exc:
        raise ArgumentError(f"{label}: not a valid ONNX model: {exc}") from None
    _read_external(onnx, external)
    graph = _to_graph(onnx, model, label, batch, dims)
    if supported is None:
        supported = OP_DEFS.supported()
    check_op_types(graph, supported, label)
    return graph


def _parse(onnx, path: str):
    from google.protobuf.json_format import ParseError  # onnx reads *.json as JSON
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model(path, load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, ParseError) as exc:
        raise ArgumentError(f"{path}: not a readable ONNX model "
                            f"({type(exc).__name__}: {exc})") from None
    if not model.graph.node and not model.graph.output:
        # A protobuf parser accepts many garbage byte strings as an empty message.
        raise ArgumentError(f"{path}: not a readable ONNX model (no graph in the file)")
    return model


def _tensors(onnx, model) -> list:
    """Every TensorProto of the main graph: initializers and Constant nodes' values."""
    out = list(model.graph.initializer)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                out.append(attr.t)
    return out


def _external_refs(onnx, model, folder: str | None, label: str) -> list[tuple]:
    """(tensor, file, offset, length) of every external tensor, each checked to lie
    inside the model's folder and within its file."""
    refs = []
    for tensor in _tensors(onnx, model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        if folder is None:
            raise ArgumentError(f"{label}: tensor {tensor.name!r} keeps its data in "
                                f"{location!r}; load the model from its path instead")
        base = os.path.realpath(folder)
        target = os.path.realpath(os.path.join(base, location))
        if not location or os.path.isabs(location) or os.path.commonpath([base, target]) != base:
            raise ArgumentError(f"{label}: tensor {tensor.name!r} refers to external data "
                                f"{location!r} outside the model's folder {base!r}; refused")
        if not os.path.isfile(target):
            raise ArgumentError(f"{label}: external data file {location!r} of tensor "
                                f"{tensor.name!r} does not exist")
        try:
            offset = int(info.get("offset", 0))
            size = os.path.getsize(target)
            length = int(info["length"]) if "length" in info else size - offset
        except ValueError:
            raise ArgumentError(f"{label}: tensor {tensor.name!r} has a malformed external "
                                f"data offset/length") from None
        if offset < 0 or length < 0 or offset + length > size:
            raise ArgumentError(f"{label}: tensor {tensor.name!r} reads bytes "
                                f"[{offset}, {offset + length}) of {location!r}, which has "
                                f"{size} bytes")
        refs.append((tensor, target, offset, length))
    return refs


def _read_external(onnx, refs: list[tuple]) -> None:
    for tensor, target, offset, length in refs:
        with open(target, "rb") as f:
            f.seek(offset)
            tensor.raw_data = f.read(length)
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def _opset(model, label: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS]
    if not versions:
        raise UnsupportedError(f"{label}: the model imports no default-domain opset")
    if versions[0] < MIN_OPSET:
        raise UnsupportedError(f"{label}: opset {versions[0]} is older than the oldest "
                               f"hwbench reads ({MIN_OPSET}); convert it with "
                               f"onnx.version_converter")
    return int(versions[0])


def _array(onnx, tensor, label: str) -> np.ndarray:
    try:
        return frozen(onnx.numpy_helper.to_array(tensor))
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a bad file
        raise ArgumentError(f"{label}: tensor {tensor.name!r} cannot be read: {exc}") from None


def _attribute(onnx, attr, label: str) -> Any:
    A = onnx.AttributeProto
    if attr.type in (A.GRAPH, A.GRAPHS):
        raise UnsupportedError(f"{label}: attribute {attr.name!r} holds a subgraph; "
                               f"control flow is not supported")
    if attr.type == A.TENSOR:
        return _array(onnx, attr.t, label)
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
    return value


def _value_info(onnx, info, label: str) -> ValueInfo:
    tensor_type = info.type.tensor_type
    if not info.type.HasField("tensor_type"):
        raise UnsupportedError(f"{label}: value {info.name!r} is not a tensor")
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    except Exception:  # noqa: BLE001 - unknown or undefined element type
        raise UnsupportedError(f"{label}: value {info.name!r} has element type "
                               f"{tensor_type.elem_type}") from None
    shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                  for d in tensor_type.shape.dim)
    return ValueInfo(info.name, shape, dtype)


def _file_dims(info) -> list[FileDim]:
    """An input's dimensions as the file gives them: sizes, symbols' names, or None."""
    out: list[FileDim] = []
    for d in info.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        else:
            out.append(d.dim_param if d.HasField("dim_param") and d.dim_param else None)
    return out


def _to_graph(onnx, model, label: str, batch: int | None = None,
              dims: dict[str, int] | None = None) -> Graph:
    opset = _opset(model, label)
    g = model.graph
    initializers = {t.name: _array(onnx, t, label) for t in g.initializer}
    if g.sparse_initializer:
        raise UnsupportedError(f"{label}: sparse initializers are not supported")
    # Before IR version 4, every initializer is also listed as a graph input.
    inputs = [_value_info(onnx, v, label) for v in g.input if v.name not in initializers]
    for proto in g.input:
        if proto.name not in initializers and not proto.type.tensor_type.HasField("shape"):
            raise UnsupportedError(f"{label}: input {proto.name!r} has no shape (unknown "
                                   f"rank); give the model a static input shape")
    try:
        fixed = fix_input_dims({v.name: _file_dims(v) for v in g.input
                                if v.name not in initializers}, batch, dims)
    except ArgumentError as exc:
        raise ArgumentError(f"{label}: {exc}") from None
    for v in inputs:
        v.shape = fixed[v.name]
    outputs = [_value_info(onnx, v, label) for v in g.output]
    nodes = [Node(n.op_type, list(n.input), list(n.output),
                  {a.name: _attribute(onnx, a, label) for a in n.attribute}, n.name, n.domain)
             for n in g.node]
    return Graph(g.name or "model", inputs, outputs, initializers, nodes, opset)


def to_onnx(graph: Graph, ir_version: int = 8, *, _tensors: list | None = None) -> Any:
    """The graph as an ONNX ModelProto (current weights included), e.g. for onnxruntime.

    IR version 8 is what onnxruntime ≥ 1.10 reads; initializers are not repeated as
    graph inputs.
    """
    onnx = _onnx()
    helper = onnx.helper

    def info(v: ValueInfo):
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(v.dtype))
        return helper.make_tensor_value_info(v.name, elem, list(v.shape))

    nodes = []
    for n in graph.nodes:
        attrs = {k: (onnx.numpy_helper.from_array(np.asarray(v)) if isinstance(v, np.ndarray)
                     else v) for k, v in n.attrs.items()}
        nodes.append(helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name or None,
                                      domain=n.domain or None, **attrs))
    if _tensors is None:
        _tensors = [onnx.numpy_helper.from_array(np.asarray(a, order="C"), name)
                    for name, a in graph.initializers.items()]
    g = helper.make_graph(nodes, graph.name, [info(v) for v in graph.inputs],
                          [info(v) for v in graph.outputs], _tensors)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", graph.opset)],
                             ir_version=ir_version, producer_name="hwbench")


def save_onnx(graph: Graph, path: str | os.PathLike, external_min_bytes: int = 1024) -> str:
    """Write ``graph`` to ``path``; tensors of ``external_min_bytes`` or more go to one
    external-data file beside it (``<path>.data``, referenced by a relative location).

    Much faster than serializing hundreds of MB into the protobuf (VGG-19: 548 MB), and
    a file that ``load_onnx`` (and onnxruntime) read back. Returns the path.
    """
    onnx = _onnx()
    path = os.fspath(path)
    data_name = os.path.basename(path) + ".data"
    tensors = []
    offset = 0
    with open(os.path.join(os.path.dirname(os.path.abspath(path)), data_name), "wb") as f:
        for name, array in graph.initializers.items():
            a = np.asarray(array, order="C")  # not ascontiguousarray: it makes 0-d 1-d
            if a.nbytes < external_min_bytes or a.dtype.byteorder == ">":
                tensors.append(onnx.numpy_helper.from_array(a, name))
                continue
            t = onnx.TensorProto()
            t.name = name
            t.data_type = onnx.helper.np_dtype_to_tensor_dtype(a.dtype)
            t.dims.extend(a.shape)
            t.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", data_name), ("offset", str(offset)),
                               ("length", str(a.nbytes))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            f.write(a.data)
            pad = -a.nbytes % 64  # keep every tensor 64-byte aligned for mmap readers
            f.write(b"\0" * pad)
            offset += a.nbytes + pad
            tensors.append(t)
    with open(path, "wb") as f:
        f.write(to_onnx(graph, _tensors=tensors).SerializeToString())
    return path
