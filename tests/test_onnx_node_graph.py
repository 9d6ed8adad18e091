"""The onnx wheel's node tests run as whole models: import, passes, executor, Session.

The kernel-level node tests (test_onnx_node*.py) adapt each node by hand; these go
through the graph layer exactly as a user's model would, so attribute handling (auto_pad,
Gemm's alpha/beta, Softmax's axis rules, Reshape's 0 and -1) is the graph layer's own.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from node_test_lists import all_node_tests  # noqa: E402
from tolerances import assert_node_close  # noqa: E402

from hwbench.graph.onnx_import import load_onnx  # noqa: E402
from hwbench.graph.passes import fold_constants, set_output_shapes  # noqa: E402
from hwbench.models import Model, Session  # noqa: E402

# Ops whose node tests feed a tensor the graph layer needs at load time (a Reshape target)
# as a run-time input: hwbench resolves shapes statically, so these are refused on purpose.
RUNTIME_SHAPES = {"Reshape"}
# ReduceX cases feeding their axes as a run-time input, refused for the same reason
# (test_onnx_node_reductions.py runs them through the graph layer with the axes constant).
from test_onnx_node_reductions import RUNTIME_AXES_CASES  # noqa: E402

# Run-time data movement (tensor_ops): every node test of these feeds its starts/ends/axes/
# steps, shape, pads, repeats or (Un)Squeeze axes as a graph input; Split's variable-parts
# tests feed 'split' so. test_tensor_ops_kernels.py runs them all with those inputs made
# constants, as an exported model has them.
RUNTIME_SHAPES |= {"Slice", "Expand", "Pad", "Tile", "Squeeze", "Unsqueeze"}
RUNTIME_SHAPE_CASES = {f"test_split_variable_parts_{kind}_opset{o}" for o in (13, 18)
                       for kind in ("1d", "2d", "default_axis")}
# Resize/Upsample feed scales/sizes/roi as graph inputs: test_onnx_node_upsampling.py runs
# them through the graph layer with those made constants.
from test_onnx_node_upsampling import RUNTIME_SCALE_CASES  # noqa: E402

RUNTIME_SHAPE_CASES |= RUNTIME_SCALE_CASES
# Cast's node tests feed NaN and infinities as graph inputs, which Session refuses on
# purpose (test_onnx_node_cast.py runs them through every backend's cast kernel).
from test_onnx_node_cast import NONFINITE_FEEDS  # noqa: E402

# Not/And/Or/Xor cases predate opset 9 (what hwbench reads): test_onnx_node_integer.py runs
# them through the graph layer converted to opset 13.
from test_onnx_node_integer import OLD_OPSET_CASES  # noqa: E402

NAMES = [name for op, names in all_node_tests().items() if op not in RUNTIME_SHAPES
         for name in names
         if name not in RUNTIME_AXES_CASES | RUNTIME_SHAPE_CASES | NONFINITE_FEEDS
         | OLD_OPSET_CASES]


def _arrays(values) -> list:
    """Node test data as NumPy arrays (some cases store TensorProtos)."""
    from onnx import TensorProto, numpy_helper

    return [numpy_helper.to_array(v) if isinstance(v, TensorProto) else v for v in values]


@pytest.fixture(scope="module")
def cases(onnx_node_cases):
    return onnx_node_cases


@pytest.mark.node_test(level="graph")
@pytest.mark.parametrize("name", NAMES)
def test_node_test_through_the_graph_layer(backend, cases, name):
    case = cases[name]
    graph = set_output_shapes(fold_constants(load_onnx(case.model)))
    session = Session(Model(name, graph), backend=backend)
    for inputs, expected in case.data_sets:
        inputs, expected = _arrays(inputs), _arrays(expected)  # (Cast's cases: protos)
        feeds = dict(zip(graph.input_names, inputs, strict=True))
        outputs = session.run(feeds)
        for got, want in zip(outputs, expected, strict=True):
            assert got.shape == want.shape
            if want.dtype.kind in "iub":  # integer and bool results are exact
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got, want)
            else:  # the node's own op decides the tolerance (see tolerances.py)
                assert_node_close(backend, case.model.graph.node[0].op_type, got, want,
                                  case.rtol, case.atol)


def test_runtime_reshape_target_is_refused_naming_the_node(cases):
    from hwbench.errors import HwbenchError

    case = cases["test_reshape_reduced_dims"]
    with pytest.raises(HwbenchError, match="Reshape node 'reshaped'.*constant"):
        set_output_shapes(fold_constants(load_onnx(case.model)))


def test_runtime_slice_bounds_are_refused_naming_the_node(cases):
    from hwbench.errors import UnsupportedError

    case = cases["test_slice"]
    with pytest.raises(UnsupportedError, match="Slice node 'y'.*'starts'.*constant"):
        set_output_shapes(fold_constants(load_onnx(case.model)))
