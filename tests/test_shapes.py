"""Tests for hwbench.kernels.shapes: the problem lists behind ``--shapes``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hwbench.errors import ArgumentError
from hwbench.kernels import shapes
from hwbench.kernels.shapes import (
    PROBLEM_SETS,
    ConvShape,
    GemmShape,
    deepbench_convs,
    deepbench_gemms,
    get_problem_set,
    resnet50_3x3,
    resnet50_convs,
    resnet50_fc,
    square_gemm,
    total_flops,
)

# Entry counts of baidu-research/DeepBench code/kernels/gemm_problems.h (commit 0201198)
# and conv_problems.h (commit e54214f), counted in the headers (duplicates included).
DEEPBENCH_COUNTS = {
    "deepbench": (75, 107),
    "deepbench-device": (13, 16),
}


def _all_sets(batch: int = 1):
    for name in PROBLEM_SETS:
        gemms, convs = get_problem_set(name, batch)
        yield name, gemms, convs


# ----------------------------------------------------------------------------- DeepBench


@pytest.mark.parametrize("name", sorted(DEEPBENCH_COUNTS))
def test_deepbench_counts_match_header(name):
    gemms, convs = get_problem_set(name)
    assert (len(gemms), len(convs)) == DEEPBENCH_COUNTS[name]


def test_deepbench_server_conv_set_keeps_header_duplicates():
    convs = deepbench_convs()
    distinct = {dataclasses.replace(c, name="-") for c in convs}
    assert len(distinct) == 103  # 107 entries, four of them repeated in the header
    assert len({c.name for c in convs}) == len(convs)  # names carry the header index


def test_deepbench_gemm_field_order():
    # Header row 0: (m=5124, n=700, k=2048, a_t=false, b_t=false).
    first = deepbench_gemms()[0]
    assert (first.m, first.n, first.k) == (5124, 700, 2048)
    assert not first.trans_a and not first.trans_b
    assert deepbench_gemms()[14].k == 500000
    device_last = deepbench_gemms(device=True)[-1]
    assert (device_last.m, device_last.n, device_last.k) == (4224, 1, 128)


def test_deepbench_conv_field_order():
    # Header row 0: (w=700, h=161, c=1, n=1, k=32, s=20, r=5, pad_w=0, pad_h=0, 2, 2).
    first = deepbench_convs()[0]
    assert first.input_shape == (1, 1, 161, 700)
    assert first.weight_shape == (32, 1, 5, 20)
    assert first.stride == (2, 2) and first.padding == (0, 0, 0, 0)
    # DeepSpeech's second layer takes the first one's output: 341 wide, 79 high.
    assert (first.out_h, first.out_w) == (79, 341)
    second_layer = deepbench_convs()[3]
    assert (second_layer.h, second_layer.w, second_layer.c) == (79, 341, 32)
    # The GoogLeNet 5x5 layer keeps its size with symmetric padding 2.
    five = deepbench_convs()[28]
    assert (five.r, five.s, five.padding, five.out_h, five.out_w) == (5, 5, (2, 2, 2, 2), 28, 28)


def test_deepbench_device_sets_are_server_subsets_for_convs():
    server = {dataclasses.replace(c, name="-") for c in deepbench_convs()}
    assert all(dataclasses.replace(c, name="-") in server for c in deepbench_convs(device=True))


# ----------------------------------------------------------------------------- every set


@pytest.mark.parametrize("batch", [1, 3])
def test_every_shape_has_positive_output_dims(batch):
    for _, gemms, convs in _all_sets(batch):
        for conv in convs:
            assert conv.out_h > 0 and conv.out_w > 0, conv
            assert conv.flops > 0 and conv.count >= 1
            assert conv.c % conv.groups == 0 and conv.k % conv.groups == 0
        for gemm in gemms:
            assert min(gemm.m, gemm.n, gemm.k) > 0 and gemm.flops == 2 * gemm.m * gemm.n * gemm.k


def test_names_are_unique_within_each_set():
    for name, gemms, convs in _all_sets():
        all_names = [s.name for s in gemms] + [s.name for s in convs]
        assert len(set(all_names)) == len(all_names), name


def test_unknown_set_raises_argument_error_naming_shapes():
    with pytest.raises(ArgumentError) as info:
        get_problem_set("resnet-50")
    message = str(info.value)
    assert "shapes" in message and "resnet-50" in message
    for valid in PROBLEM_SETS:
        assert valid in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("batch", [0, -1, 1.5, True])
def test_bad_batch_raises(batch):
    with pytest.raises(ArgumentError, match="batch"):
        get_problem_set("resnet50", batch)


# ----------------------------------------------------------------------------- ResNet-50


def test_resnet50_layer_and_shape_counts():
    layers = shapes._resnet50_layers(1)
    convs = resnet50_convs()
    assert len(layers) == 53  # stem + 16 bottlenecks x 3 + 4 projection shortcuts
    assert len(convs) == 23
    assert sum(c.count for c in convs) == 53
    assert total_flops(convs) == total_flops(layers)


def test_resnet50_conv_flops_at_batch_1():
    flops = total_flops(resnet50_convs(1))
    # 2 x 4.087 GMACs; with the FC's 2.048 MMACs this is torchvision's 4.089 "GFLOPS".
    assert flops == 8_174_272_512
    assert 7.7e9 <= flops <= 8.3e9
    assert (flops + resnet50_fc().flops) // 2 == 4_089_184_256


@pytest.mark.parametrize("dropped", range(len(shapes._RESNET50_STAGES)))
def test_resnet50_flop_range_fails_without_a_stage(monkeypatch, dropped):
    stages = list(shapes._RESNET50_STAGES)
    del stages[dropped]
    monkeypatch.setattr(shapes, "_RESNET50_STAGES", tuple(stages))
    assert not 7.7e9 <= total_flops(resnet50_convs(1)) <= 8.3e9


def test_resnet50_scales_with_batch():
    assert total_flops(resnet50_convs(8)) == 8 * total_flops(resnet50_convs(1))
    assert all(c.n == 8 for c in resnet50_convs(8))
    assert resnet50_fc(8).m == 8


def test_resnet50_stem_and_stage_resolutions():
    convs = {c.name: c for c in resnet50_convs()}
    stem = convs["resnet50_conv1"]
    assert stem.weight_shape == (64, 3, 7, 7) and stem.output_shape == (1, 64, 112, 112)
    assert convs["resnet50_layer1.0.conv1"].input_shape == (1, 64, 56, 56)
    # v1.5: the stride-2 sits on the 3x3 conv of a downsampling block.
    assert convs["resnet50_layer2.0.conv2"].stride == (2, 2)
    assert convs["resnet50_layer2.0.conv1"].stride == (1, 1)
    assert convs["resnet50_layer4.0.downsample"].output_shape == (1, 2048, 7, 7)
    assert convs["resnet50_layer4.1.conv1"].input_shape == (1, 2048, 7, 7)


def test_resnet50_3x3_only():
    convs = resnet50_3x3(2)
    assert convs and all(c.r == 3 and c.s == 3 for c in convs)
    assert len(convs) == 7 and sum(c.count for c in convs) == 16  # 3 + 4 + 6 + 3 blocks
    assert all(c.n == 2 and c.padding == (1, 1, 1, 1) for c in convs)
    assert {c.stride for c in convs} == {(1, 1), (2, 2)}


def test_resnet50_fc_and_problem_set():
    fc = resnet50_fc()
    assert (fc.m, fc.n, fc.k) == (1, 1000, 2048) and fc.flops == 2 * 1000 * 2048
    gemms, convs = get_problem_set("resnet50", batch=4)
    assert gemms == [resnet50_fc(4)] and convs == resnet50_convs(4)


# ----------------------------------------------------------------------------- small


def test_small_set_covers_conv_features():
    gemms, convs = get_problem_set("small")
    assert 3 <= len(gemms) <= 8 and 3 <= len(convs) <= 8
    assert any(g.trans_b for g in gemms)
    assert any(c.groups > 1 for c in convs)
    assert any(c.dilation != (1, 1) for c in convs)
    asym = [c for c in convs if c.padding[:2] != c.padding[2:]]
    assert asym and all(c.stride == (2, 2) for c in asym)
    assert asym[0].output_shape == (1, 32, 16, 12)
    # Small enough for a 2-core CPU sweep: well under a GFLOP in total.
    assert total_flops(gemms) + total_flops(convs) < 1e9


def test_small_set_uses_batch():
    gemms, convs = get_problem_set("small", batch=2)
    assert all(c.n == 2 for c in convs)
    assert any(g.m == 2 and g.n == 1000 and g.k == 2048 for g in gemms)


# ----------------------------------------------------------------------------- shape types


def test_square_gemm():
    g = square_gemm(512)
    assert g.name == "gemm_512^3" and (g.m, g.n, g.k) == (512, 512, 512)
    assert g.flops == 2 * 512**3 and not g.trans_a and not g.trans_b
    with pytest.raises(ArgumentError, match="`n`"):
        square_gemm(0)


def test_gemm_stored_shapes_follow_transposition():
    g = GemmShape(2, 3, 4, trans_a=True, trans_b=True)
    assert g.a_shape == (4, 2) and g.b_shape == (3, 4) and g.c_shape == (2, 3)
    assert g.name == "gemm_2x3x4_TT"
    plain = GemmShape(2, 3, 4)
    assert plain.a_shape == (2, 4) and plain.b_shape == (4, 3)


def test_conv_arithmetic_matches_onnx():
    # floor((h + pads - dilation*(r-1) - 1)/stride + 1), per axis.
    conv = ConvShape(
        2, 8, 11, 9, 4, 3, 2, stride=(2, 3), padding=(1, 0, 2, 1), dilation=(2, 1), groups=2
    )
    assert conv.out_h == (11 + 1 + 2 - 2 * 2 - 1) // 2 + 1 == 5
    assert conv.out_w == (9 + 0 + 1 - 1 * 1 - 1) // 3 + 1 == 3
    assert conv.weight_shape == (4, 4, 3, 2)
    assert conv.output_shape == (2, 4, 5, 3)
    assert conv.flops == 2 * 2 * 4 * 5 * 3 * 4 * 3 * 2


def test_conv_accepts_numpy_ints_and_lists():
    conv = ConvShape(np.int64(1), 4, 8, 8, 4, 3, 3, stride=[1, 1], padding=np.array([1, 1, 1, 1]))
    assert type(conv.n) is int and conv.padding == (1, 1, 1, 1) and conv.out_h == 8
    assert conv == ConvShape(1, 4, 8, 8, 4, 3, 3, padding=(1, 1, 1, 1))


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"groups": 3}, "groups"),
        ({"stride": (0, 1)}, "stride"),
        ({"padding": (1, 1)}, "padding"),
        ({"padding": (-1, 0, 0, 0)}, "padding"),
        ({"dilation": (1, 5)}, "padding"),  # effective kernel 11 > 8 + 0: empty output
        ({"count": 0}, "count"),
    ],
)
def test_conv_rejects_bad_arguments(kwargs, arg):
    with pytest.raises(ArgumentError, match=arg):
        ConvShape(1, 4, 8, 8, 4, 3, 3, **kwargs)


def test_shapes_are_frozen_and_hashable():
    conv = resnet50_convs()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        conv.n = 2  # type: ignore[misc]
    assert len({conv, dataclasses.replace(conv)}) == 1
