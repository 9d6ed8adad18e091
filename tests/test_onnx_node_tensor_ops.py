"""The onnx wheel's node tests for run-time data movement (Slice, Split, Expand, Gather,
Squeeze, Unsqueeze, Pad, Tile), run through every backend's kernels.

The adapter reads each node's shape-like inputs (starts/ends/axes/steps, split, shape,
pads, repeats, axes) as host values, as the graph layer does with constants, and calls
``slice``/``gather``/``expand``/``pad``/``tile`` (Split as slices, (Un)Squeeze as
``reshape``, with the graph layer's own shape rules). Pad's reflect/edge/wrap tests hold
int32 data, which these kernels move exactly.

Left out, with the reason:
- test_slice_start_out_of_bounds, test_split_zero_size_splits_opset{13,18}: their
  results have a zero-size dimension; hwbench's kernels refuse empty arrays.
- test_gather_elements_*, test_gathernd_*, test_split_to_sequence_*: other ops
  (GatherElements, GatherND, SplitToSequence).
- test_identity_opt, test_identity_sequence: optional and sequence types, not tensors.
"""

from __future__ import annotations

import numpy as np
import pytest
from node_cases import case_opset, listed_node, outputs_beside_expected

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx.helper import get_attribute_value  # noqa: E402

from hwbench.graph.ir import Node  # noqa: E402
from hwbench.graph.ops.tensor_ops import split_sizes, squeezed, unsqueezed  # noqa: E402

SPLIT_OPSETS = ("opset13", "opset18")
NODE_TESTS = {
    "Slice": ["test_slice", "test_slice_default_axes", "test_slice_default_steps",
              "test_slice_end_out_of_bounds", "test_slice_neg", "test_slice_neg_steps",
              "test_slice_negative_axes"],
    "Split": ["test_split_1d_uneven_split_opset18", "test_split_2d_uneven_split_opset18",
              "test_split_equal_parts_2d"]
    + [f"test_split_{kind}_{o}" for o in SPLIT_OPSETS
       for kind in ("equal_parts_1d", "equal_parts_2d", "equal_parts_default_axis",
                    "variable_parts_1d", "variable_parts_2d", "variable_parts_default_axis")
       if f"{kind}_{o}" != "equal_parts_2d_opset18"],
    "Expand": ["test_expand_dim_changed", "test_expand_dim_unchanged"],
    "Gather": ["test_gather_0", "test_gather_1", "test_gather_2d_indices",
               "test_gather_negative_indices"],
    "Squeeze": ["test_squeeze", "test_squeeze_negative_axes"],
    "Unsqueeze": [f"test_unsqueeze_{s}" for s in (
        "axis_0", "axis_1", "axis_2", "negative_axes", "three_axes", "two_axes",
        "unsorted_axes")],
    "Pad": ["test_constant_pad", "test_constant_pad_axes", "test_constant_pad_negative_axes",
            "test_edge_pad", "test_reflect_pad", "test_wrap_pad"],
    "Tile": ["test_tile", "test_tile_precomputed"],
    "Identity": ["test_identity"],
}
ALL_NAMES = [name for names in NODE_TESTS.values() for name in names]


def _ints(x) -> list[int] | None:
    return None if x is None else [int(v) for v in np.asarray(x).ravel()]


def _pads(attrs: dict, inputs: list, rank: int) -> tuple[list[int], float]:
    pads = _ints(inputs[1])
    value = inputs[2] if len(inputs) > 2 and inputs[2] is not None else None
    axes = _ints(inputs[3]) if len(inputs) > 3 else None
    if axes is not None:
        full = [0] * (2 * rank)
        for j, axis in enumerate(axes):
            full[axis % rank], full[axis % rank + rank] = pads[j], pads[j + len(axes)]
        pads = full
    return pads, 0.0 if value is None else np.asarray(value).ravel()[0].item()


def run_node(be, node, inputs: list, opset: int) -> list[np.ndarray]:
    """Run one ONNX node through the backend's kernels (host arrays in and out)."""
    attrs = {a.name: get_attribute_value(a) for a in node.attribute}
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    x = be.asarray(inputs[0])
    op = node.op_type
    if op == "Slice":
        outs = [be.slice(x, _ints(inputs[1]), _ints(inputs[2]),
                         _ints(inputs[3]) if len(inputs) > 3 else None,
                         _ints(inputs[4]) if len(inputs) > 4 else None)]
    elif op == "Split":
        ir = Node("Split", list(node.input), list(node.output), attrs)
        axis = attrs.get("axis", 0) % inputs[0].ndim
        start, outs = 0, []
        for size in split_sizes(ir, inputs[0].shape[axis],
                                inputs[1] if len(inputs) > 1 else None, opset):
            outs.append(be.slice(x, [start], [start + size], [axis]))
            start += size
    elif op == "Expand":
        outs = [be.expand(x, _ints(inputs[1]))]
    elif op == "Gather":
        outs = [be.gather(x, inputs[1], attrs.get("axis", 0))]
    elif op in ("Squeeze", "Unsqueeze"):
        rule = squeezed if op == "Squeeze" else unsqueezed
        shape = rule(Node(op, [], []), inputs[0].shape, _ints(inputs[1]))
        outs = [be.reshape(x, shape)]
    elif op == "Pad":
        pads, value = _pads(attrs, inputs, inputs[0].ndim)
        outs = [be.pad(x, pads, attrs.get("mode", "constant"), value)]
    elif op == "Tile":
        outs = [be.tile(x, _ints(inputs[1]))]
    elif op == "Identity":
        outs = [x]
    else:
        raise AssertionError(f"no adapter for {op}")
    return [be.to_numpy(out) for out in outs]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_onnx_node(backend, node_tests, name):
    case = node_tests[name]
    node, opset = listed_node(case, NODE_TESTS, name), case_opset(case)
    for got, want in outputs_beside_expected(
            case, lambda inputs: run_node(backend, node, inputs, opset)):
        np.testing.assert_array_equal(got, want)  # data movement is exact
