"""What every ONNX node-test module does around its own adapter, written once.

Each ``tests/test_onnx_node_*.py`` maps a node onto kernels its own way (``run_node``) and
compares its own way (exact, allclose or the op's tolerance); checking that a case is the
op its list names, running each data set, matching outputs to expected ones, and running
a case with its later inputs made constants through the graph layer are the same in all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np


def listed_node(case: Any, node_tests: dict[str, list[str]], name: str, node: Any = None):
    """The case's node (``node`` if given: an imported one), checked to be the op type
    under which ``node_tests`` lists ``name``."""
    node = case.model.graph.node[0] if node is None else node
    assert [op for op, names in node_tests.items() if name in names] == [node.op_type]
    return node


def case_opset(case: Any) -> int:
    """The default-domain opset the case's model was written for."""
    return next(o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx"))


def outputs_beside_expected(case: Any, run: Callable[[list], Any]
                            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(got, want) for each output of each data set, once shape and dtype agree. ``run``
    takes the inputs and returns one array (compared with the first expected output) or
    a list of them (as many as expected)."""
    for inputs, expected in case.data_sets:
        results = run(list(inputs))
        if isinstance(results, np.ndarray):
            results, expected = [results], expected[:1]
        assert len(results) == len(expected)
        for got, want in zip(results, expected, strict=True):
            assert got.shape == want.shape
            assert got.dtype == want.dtype
            yield got, want


def run_with_constant_inputs(case: Any, name: str, inputs: list, backend: Any) -> np.ndarray:
    """The case's model with every input after the first made an initializer (axes,
    scales, sizes: what an exported model holds as constants), imported, folded,
    shape-inferred and run on ``backend``; its one output."""
    import onnx
    from onnx import numpy_helper

    from hwbench.graph.onnx_import import load_onnx
    from hwbench.graph.passes import fold_constants, set_output_shapes
    from hwbench.models import Model, Session

    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph_inputs = list(model.graph.input)
    for value, info in zip(inputs[1:], graph_inputs[1:], strict=True):
        model.graph.initializer.append(numpy_helper.from_array(value, info.name))
        model.graph.input.remove(info)
    graph = set_output_shapes(fold_constants(load_onnx(model)))
    (got,) = Session(Model(name, graph), backend=backend).run({graph.input_names[0]: inputs[0]})
    return got
