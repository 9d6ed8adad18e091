"""``Model`` and ``load_model``: a zoo name or an .onnx path -> a graph ready for sessions.

A Model's graph is the imported graph with its constants folded (the zoo files build
every weight with ConstantOfShape) and, if asked, a new batch size; it is *not* yet
optimized. Each ``Session`` runs the inference passes (BatchNorm folding, ...) on its own
copy, so ``Model.to_onnx()`` hands onnxruntime the model as written, with the current
weights: an independent check of everything hwbench's passes do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from hwbench.errors import ArgumentError
from hwbench.graph.ir import Graph
from hwbench.graph.onnx_import import load_onnx, to_onnx
from hwbench.graph.passes import fold_constants, rewrite_batch, set_output_shapes
from hwbench.graph.quantize import is_quantized
from hwbench.models import digits, zoo
from hwbench.models.generated import DEFAULT_DIMS, GENERATED


@dataclass
class Model:
    """A named graph plus where it came from."""

    name: str
    graph: Graph
    path: str | None = None

    @property
    def inputs(self) -> list[str]:
        return self.graph.input_names

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {v.name: tuple(v.shape) for v in self.graph.inputs}

    @property
    def outputs(self) -> list[str]:
        return self.graph.output_names

    @property
    def precision(self) -> str:
        """"int8" for a quantized graph (QLinearConv, ConvInteger, ...), else "fp32"."""
        return "int8" if is_quantized(self.graph) else "fp32"

    @property
    def batch(self) -> int:
        return int(self.graph.inputs[0].shape[0])

    def to_onnx(self) -> Any:
        """An ``onnx.ModelProto`` of this model with its current weights.

        For the big models ``hwbench.graph.onnx_import.save_onnx`` (weights in an
        external-data file) is several times faster than serializing this proto.
        """
        return to_onnx(self.graph)

    def with_batch(self, batch: int) -> Model:
        return Model(self.name, rewrite_batch(self.graph, batch), self.path)

    def randomized(self, seed: int = 0) -> Model:
        """The same architecture with seeded random weights (``zoo.randomize_weights``)."""
        return Model(self.name, zoo.randomize_weights(self.graph, seed), self.path)

    def __repr__(self) -> str:
        return (f"<Model {self.name!r} inputs={self.input_shapes} outputs={self.outputs} "
                f"nodes={len(self.graph.nodes)}>")


def load_model(name_or_path: str | os.PathLike, batch: int | None = None,
               dims: dict[str, int] | None = None) -> Model:
    """A zoo model by name (the digits models, ``hwbench.models.zoo.ZOO``,
    ``hwbench.models.generated.GENERATED``) or an .onnx file by path.

    ``batch`` is the batch size: it fills an input's symbolic (or unknown) first
    dimension, as exported with a dynamic batch, and rewrites a static one (see
    ``hwbench.graph.passes.rewrite_batch``). ``dims`` sizes the other symbolic
    dimensions by the names the file gives them, e.g. ``dims={"sequence": 128}``
    (onnxruntime's free dimension overrides; the CLI's ``--dim sequence=128``). A
    symbolic dimension left without a size raises ``ArgumentError`` naming it.
    """
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)
                              or batch < 1):  # (True would pass as batch 1 below)
        raise ArgumentError(f"argument 'batch' must be a positive int, got {batch!r}")
    source: Any
    if isinstance(name_or_path, str) and name_or_path in digits.ARCHITECTURES:
        # The digits models: their shipped weights, exported as an ONNX graph at batch 1.
        name, path = name_or_path, None
        source = digits.to_onnx(name, digits.load_params(name), batch=1)
    elif isinstance(name_or_path, str) and name_or_path in GENERATED:
        # Built here with the seed-0 weights: symbolic batch (1 unless given) and, for the
        # transformers, sequence (DEFAULT_DIMS unless ``dims`` sizes it).
        name, path = name_or_path, None
        source = GENERATED[name]()
        dims = {**DEFAULT_DIMS.get(name, {}), **(dims or {})}
        batch = 1 if batch is None else batch
    elif isinstance(name_or_path, str) and name_or_path in zoo.ZOO:
        name, path = name_or_path, zoo.model_path(name_or_path)
        source = path
    elif isinstance(name_or_path, (str, os.PathLike)):
        path = os.fspath(name_or_path)
        if not os.path.isfile(path):
            known = ", ".join([*digits.ARCHITECTURES, *zoo.ZOO, *GENERATED])
            raise ArgumentError(f"argument 'name_or_path': {path!r} is neither a zoo model "
                                f"({known}) nor a file")
        name = os.path.splitext(os.path.basename(path))[0]
        source = path
    else:
        raise ArgumentError(f"argument 'name_or_path' must be a zoo name or a path, "
                            f"got {type(name_or_path).__name__}")
    graph = set_output_shapes(fold_constants(load_onnx(source, batch=batch, dims=dims)))
    model = Model(name, graph, path)
    if batch is not None and batch != model.batch:
        model = model.with_batch(batch)
    return model
