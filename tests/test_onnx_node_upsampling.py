"""The onnx wheel's node tests for the upsampling family (issue 15): ConvTranspose, Resize
and Upsample, run through every backend's ``conv_transpose2d`` / ``resize`` kernels. The
adapter maps each node with the graph layer's own attribute handling
(``hwbench.graph.ops.upsampling``); tests/test_onnx_node_graph.py runs the ConvTranspose
cases as whole models, and the Resize/Upsample cases (whose scales/sizes/roi arrive as
run-time graph inputs) run through the graph layer here with those inputs made constants,
as exported models have them.

Every float32 case of the wheel is listed (ConvTranspose's are opset 22, Resize's 19,
Upsample's 9), except:
- test_convtranspose_3d: 3-D transposed convolution; the kernel is 2-D (1-D runs as 2-D).
"""

from __future__ import annotations

import numpy as np
import pytest
from node_cases import case_opset, listed_node, outputs_beside_expected, run_with_constant_inputs

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx.helper import get_attribute_value  # noqa: E402
from tolerances import assert_node_close  # noqa: E402

from hwbench.graph.ir import Node  # noqa: E402
from hwbench.graph.ops.upsampling import conv_transpose_args, resize_params  # noqa: E402

NODE_TESTS = {
    "ConvTranspose": [f"test_convtranspose{s}" for s in (
        "", "_1d", "_output_shape", "_pad", "_kernel_shape", "_pads", "_dilations",
        "_autopad_same", "_group_2", "_group_2_image_3")],
    "Resize": [f"test_resize_{s}" for s in (
        "upsample_scales_nearest", "downsample_scales_nearest", "upsample_sizes_nearest",
        "downsample_sizes_nearest", "upsample_scales_linear",
        "upsample_scales_linear_align_corners", "downsample_scales_linear",
        "downsample_scales_linear_align_corners", "upsample_scales_cubic",
        "upsample_scales_cubic_align_corners", "downsample_scales_cubic",
        "downsample_scales_cubic_align_corners", "upsample_sizes_cubic",
        "downsample_sizes_cubic", "upsample_scales_cubic_A_n0p5_exclude_outside",
        "downsample_scales_cubic_A_n0p5_exclude_outside", "upsample_scales_cubic_asymmetric",
        "tf_crop_and_resize", "tf_crop_and_resize_extrapolation_value",
        "downsample_sizes_linear_pytorch_half_pixel",
        "upsample_sizes_nearest_floor_align_corners",
        "upsample_sizes_nearest_round_prefer_ceil_asymmetric",
        "upsample_sizes_nearest_ceil_half_pixel", "downsample_scales_linear_antialias",
        "downsample_sizes_linear_antialias", "downsample_scales_cubic_antialias",
        "downsample_sizes_cubic_antialias", "upsample_scales_nearest_axes_2_3",
        "upsample_scales_nearest_axes_3_2", "upsample_sizes_nearest_axes_2_3",
        "upsample_sizes_nearest_axes_3_2", "tf_crop_and_resize_axes_2_3",
        "tf_crop_and_resize_axes_3_2", "upsample_sizes_nearest_not_larger",
        "upsample_sizes_nearest_not_smaller", "downsample_sizes_nearest_not_larger",
        "downsample_sizes_nearest_not_smaller",
        "downsample_scales_linear_half_pixel_symmetric",
        "upsample_scales_linear_half_pixel_symmetric")],
    "Upsample": ["test_upsample_nearest"],
}
ALL_NAMES = [name for names in NODE_TESTS.values() for name in names]
# Cases whose scales/sizes/roi are run-time graph inputs: tests/test_onnx_node_graph.py
# leaves them to test_node_test_with_constant_scales_through_the_graph_layer below.
RUNTIME_SCALE_CASES = set(NODE_TESTS["Resize"]) | set(NODE_TESTS["Upsample"])


def _node(onnx_node) -> Node:
    attrs = {a.name: get_attribute_value(a) for a in onnx_node.attribute}
    return Node(onnx_node.op_type, list(onnx_node.input), list(onnx_node.output), attrs,
                name=onnx_node.name)


def run_node(be, onnx_node, inputs: list[np.ndarray], opset: int) -> np.ndarray:
    """One node through the backend's kernels (host arrays in and out)."""
    node = _node(onnx_node)
    feeds = iter(inputs)
    args = [next(feeds) if name else None for name in onnx_node.input]
    if node.op_type == "ConvTranspose":
        x, w = args[0], args[1]
        params = conv_transpose_args(node, x.shape, w.shape)
        if x.ndim == 3:
            x, w = x[:, :, None], w[:, :, None]
        bias = be.asarray(args[2]) if len(args) > 2 and args[2] is not None else None
        out = be.to_numpy(be.conv_transpose2d(be.asarray(x), be.asarray(w), bias, **params))
        return out[:, :, 0] if args[0].ndim == 3 else out
    return be.to_numpy(be.resize(be.asarray(args[0]), **resize_params(node, args, opset)))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_onnx_node(backend, node_tests, name):
    case = node_tests[name]
    node, opset = listed_node(case, NODE_TESTS, name), case_opset(case)
    for got, want in outputs_beside_expected(
            case, lambda inputs: run_node(backend, node, inputs, opset)):
        assert_node_close(backend, node.op_type, got, want, case.rtol, case.atol)


@pytest.mark.node_test(level="graph")
@pytest.mark.parametrize("name", sorted(RUNTIME_SCALE_CASES))
def test_node_test_with_constant_scales_through_the_graph_layer(backend, node_tests, name):
    """The case's roi/scales/sizes made initializers: import, folding, shape inference and
    the executor then run it as an exported model would."""
    case = node_tests[name]
    for inputs, expected in case.data_sets:
        got = run_with_constant_inputs(case, name, inputs, backend)
        assert got.shape == expected[0].shape
        assert_node_close(backend, case.model.graph.node[0].op_type, got, expected[0],
                          case.rtol, case.atol)


def test_runtime_scales_are_refused_naming_the_node(onnx_node_cases):
    from hwbench.errors import UnsupportedError
    from hwbench.graph.onnx_import import load_onnx
    from hwbench.graph.passes import fold_constants, set_output_shapes

    case = onnx_node_cases["test_resize_upsample_scales_nearest"]
    with pytest.raises(UnsupportedError, match="Resize node.*scales.*constant"):
        set_output_shapes(fold_constants(load_onnx(case.model)))
