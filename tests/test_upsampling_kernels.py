"""The upsampling family's kernels on every backend: ``conv_transpose2d`` and ``resize``
against the float64 references at odd sizes (groups, dilations, strides, negative and
output pads; every Resize mode and coordinate transformation), the references against
ONNX's own reference implementation, bad input raising named hwbench errors, and the
systolic backend's counters."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_close

from hwbench.errors import ArgumentError, DTypeError, UnsupportedError
from hwbench.kernels import spec, upsampling_reference
from hwbench.kernels.conv_transpose_lowering import gemm_operands
from hwbench.kernels.resize_tables import COORDINATE_MODES, NEAREST_MODES

# (n, c, h, w, k, r, s, stride, padding, dilation, groups, output_padding, bias)
CONV_T = [
    (1, 1, 3, 3, 2, 3, 3, 1, 0, 1, 1, 0, False),
    (2, 4, 5, 3, 6, 3, 2, (2, 3), (1, 0, 2, 1), (1, 2), 2, (1, 0), True),
    (1, 3, 4, 4, 3, 3, 3, 2, (-1, 0, 0, -2), 1, 1, 0, True),     # negative pads
    (1, 2, 3, 3, 4, 2, 2, 3, (0, -1, -2, 0), (2, 1), 2, (2, 1), False),
    (3, 1, 7, 2, 1, 4, 1, 1, (2, 0, 1, 0), 1, 1, 0, True),
    (1, 6, 5, 7, 9, 4, 4, 2, 1, 1, 3, 0, True),                  # DCGAN-style k4 s2 p1
    (2, 5, 1, 9, 3, 1, 5, (1, 4), (0, 2), 1, 1, (0, 3), True),   # a 1-D conv as 2-D
]


def _conv_t_case(rng, case):
    n, c, h, w, k, r, s, stride, pad, dil, g, extra, has_bias = case
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((c, k // g, r, s)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32) if has_bias else None
    return x, wt, b, dict(stride=stride, padding=pad, dilation=dil, groups=g,
                          output_padding=extra)


@pytest.mark.parametrize("case", CONV_T, ids=lambda c: "x".join(map(str, c[:7])))
def test_conv_transpose2d_matches_the_float64_reference(backend, rng, case):
    x, w, b, params = _conv_t_case(rng, case)
    p = spec.check_conv_transpose2d(x, w, b, **params)
    ref = upsampling_reference.conv_transpose2d(x, w, b, p)
    got = backend.conv_transpose2d(backend.asarray(x), backend.asarray(w),
                                   None if b is None else backend.asarray(b), **params)
    assert_close(backend.to_numpy(got), ref, k=p.c // p.groups * p.r * p.s,
                 dtype=np.float32, backend=backend)


def test_conv_transpose_reference_matches_onnxruntime(rng):
    """The float64 reference against onnxruntime's ConvTranspose at every case with
    non-negative pads (ONNX's attributes; output_padding as such)."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    for case in CONV_T:
        x, w, b, params = _conv_t_case(rng, case)
        p = spec.check_conv_transpose2d(x, w, b, **params)
        extra = spec.check_conv_transpose2d(x, w, b, **{**params, "output_padding": 0})
        if min(extra.padding) < 0:
            continue  # ONNX's reference takes only non-negative pads
        names = ["x", "w"] + (["b"] if b is not None else [])
        node = helper.make_node(
            "ConvTranspose", names, ["y"], strides=list(p.stride), dilations=list(p.dilation),
            group=p.groups, pads=list(extra.padding),
            output_padding=[p.out_h - extra.out_h, p.out_w - extra.out_w])
        values = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names]
        graph = helper.make_graph([node], "g", values,
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        feeds = dict(zip(names, [x, w] + ([b] if b is not None else []), strict=True))
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        (want,) = session.run(None, feeds)
        np.testing.assert_allclose(upsampling_reference.conv_transpose2d(x, w, b, p), want,
                                   rtol=1e-4, atol=1e-4)


RESIZE = [  # (shape, sizes or None, scales or None, options)
    ((1, 2, 5, 7), None, (1, 1, 2.5, 0.6), dict(mode="linear")),
    ((2, 3, 7, 5), (2, 3, 14, 10), None, dict(mode="linear")),        # cpu: oneDNN linear
    ((1, 2, 6, 9), (1, 2, 3, 4), None, dict(mode="linear")),          # downsampling
    ((1, 3, 5, 7), (1, 3, 15, 21), None,
     dict(mode="nearest", nearest_mode="round_prefer_ceil")),          # cpu: oneDNN nearest
    ((1, 1, 4, 5, 3), (1, 1, 8, 10, 6), None, dict(mode="linear")),    # 3-D linear
    ((1, 2, 5, 7), None, (1, 1, 2, 2),
     dict(mode="nearest", coordinate_transformation_mode="asymmetric",
          nearest_mode="floor")),                                      # PyTorch's export
    ((3, 4, 5), (3, 9), None, dict(mode="cubic", axes=[2, 0], exclude_outside=True,
                                   cubic_coeff_a=-0.5)),
    ((1, 1, 9, 11), (1, 1, 4, 3), None, dict(mode="cubic", antialias=True)),
    ((1, 1, 9, 11), None, (1, 1, 0.4, 0.7), dict(mode="linear", antialias=True)),
    ((2, 5, 7), (2, 5, 4), None, dict(mode="linear", coordinate_transformation_mode=
                                      "tf_crop_and_resize", roi=[0, 0, 0.1, 1, 1, 1.3],
                                      extrapolation_value=3.5)),
    ((1, 2, 4, 6), (5, 3), None, dict(mode="nearest", axes=[2, 3],
                                      keep_aspect_ratio_policy="not_smaller")),
    ((1, 2, 3, 3), None, (1, 1, 1, 1), dict(mode="linear")),           # identity
]


@pytest.mark.parametrize("case", RESIZE, ids=lambda c: f"{c[0]}-{c[3].get('mode')}")
def test_resize_matches_the_float64_reference(backend, rng, case):
    shape, sizes, scales, options = case
    x = rng.standard_normal(shape).astype(np.float32)
    p = spec.check_resize(x, scales, sizes, **options)
    got = backend.to_numpy(backend.resize(backend.asarray(x), scales, sizes, **options))
    assert_close(got, upsampling_reference.resize(x, p), k=16, dtype=np.float32)


@pytest.mark.parametrize("nearest_mode", NEAREST_MODES)
def test_nearest_resize_copies_infinities_and_nans_only_where_it_reads_them(backend,
                                                                            nearest_mode):
    """Nearest reads one input per output: an infinity beside the one it reads must not
    turn its output into NaN (a two-tap table with a 0 weight did: 0 · inf)."""
    from hwbench.backends import get_backend

    unchecked = get_backend(backend.full_name, check_finite=False)
    x = np.arange(2 * 5 * 7, dtype=np.float32).reshape(1, 2, 5, 7)
    x[0, 0, 2, 3], x[0, 1, 4, 0], x[0, 1, 0, 6] = np.inf, -np.inf, np.nan
    options = dict(mode="nearest", nearest_mode=nearest_mode,
                   coordinate_transformation_mode="half_pixel")
    for sizes in ((1, 2, 11, 4), (1, 2, 3, 16)):
        p = spec.check_resize(x, sizes=sizes, **options)
        got = unchecked.to_numpy(unchecked.resize(unchecked.asarray(x), sizes=sizes,
                                                  **options))
        rows, cols = (t.index[:, 0] for t in p.tables)  # what each output reads
        want = x[:, :, rows][:, :, :, cols]
        np.testing.assert_array_equal(got, want)  # inf, -inf and nan exactly where read
        assert np.isnan(got).sum() == np.isnan(want).sum()


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("ctm", COORDINATE_MODES)
def test_resize_reference_matches_onnx_reference(rng, mode, ctm):
    """Every mode × coordinate transformation (× nearest mode) at odd sizes, up and down,
    against onnx.reference's Resize."""
    from onnx.reference.ops.op_resize import Resize

    x = rng.standard_normal((1, 2, 5, 7)).astype(np.float32)
    roi = np.array([0, 0, 0.2, -0.1, 1, 1, 0.9, 1.2], np.float32)
    for nearest in NEAREST_MODES if mode == "nearest" else ("round_prefer_floor",):
        for sizes in ((1, 2, 8, 3), (1, 2, 1, 11)):
            kw = dict(mode=mode, coordinate_transformation_mode=ctm, nearest_mode=nearest,
                      cubic_coeff_a=-0.75, exclude_outside=0, extrapolation_value=-2.0,
                      antialias=0, axes=None, keep_aspect_ratio_policy="stretch")
            want = Resize._run(None, x, roi, None, np.array(sizes, np.int64), **kw)[0]
            p = spec.check_resize(x, sizes=sizes, roi=roi, **{
                k: v for k, v in kw.items() if k != "axes"})
            np.testing.assert_allclose(upsampling_reference.resize(x, p), want, rtol=1e-5,
                                       atol=1e-5)


def test_cpu_runs_onednn_deconvolution_and_resampling(rng):
    from hwbench.backends import get_backend
    from hwbench.pytest_plugin import availability

    ok, why = availability("cpu")
    if not ok:
        pytest.skip(why)
    from hwbench.backends.cpu.upsampling import native_resampling

    be = get_backend("cpu")
    x, w, b, params = _conv_t_case(rng, CONV_T[1])
    be.conv_transpose2d(be.asarray(x), be.asarray(w), be.asarray(b), **params)
    assert any(key[0] == "deconv" for key in be._primitives)
    x = np.ones((1, 1, 3, 3), np.float32)
    assert native_resampling(spec.check_resize(x, sizes=(1, 1, 6, 7), mode="linear")) == \
        "resampling_linear"
    for options in (dict(mode="nearest", nearest_mode="floor"), dict(mode="cubic"),
                    dict(mode="linear", coordinate_transformation_mode="align_corners"),
                    dict(mode="linear", antialias=True)):
        assert native_resampling(spec.check_resize(x, sizes=(1, 1, 6, 7), **options)) is None
    # a scale whose product is not the size: oneDNN's factor would differ from ONNX's
    assert native_resampling(spec.check_resize(x, scales=(1, 1, 2.5, 2), mode="linear")) is None
    # round_prefer_floor (ONNX's default) picks as oneDNN does where no coordinate is a
    # tie (3 -> 6, 7: BEGAN's x2); halving meets ties (2j + 0.5) and rounds them down
    assert native_resampling(spec.check_resize(x, sizes=(1, 1, 6, 7), mode="nearest")) == \
        "resampling_nearest"
    x = np.ones((1, 1, 6, 6), np.float32)
    assert native_resampling(spec.check_resize(x, sizes=(1, 1, 3, 3), mode="nearest")) is None


@pytest.mark.parametrize("nearest", NEAREST_MODES)
def test_cpu_runs_nearest_on_onednn_only_where_it_picks_the_same(rng, nearest):
    """Every nearest mode × coordinate mode, up and down at odd sizes: where
    ``native_resampling`` gives oneDNN's nearest the cpu backend's resize is the
    reference's, value for value (a wrong pick would be a whole other value); the
    rounding modes meet such cases, floor and ceil none of these."""
    from hwbench.backends import get_backend
    from hwbench.pytest_plugin import availability

    ok, why = availability("cpu")
    if not ok:
        pytest.skip(why)
    from hwbench.backends.cpu.upsampling import native_resampling

    be, native = get_backend("cpu"), 0
    for ctm in COORDINATE_MODES:
        if ctm == "tf_crop_and_resize":
            continue
        for shape, sizes in (((1, 2, 4, 5), (1, 2, 8, 15)), ((1, 2, 4, 5), (1, 2, 7, 11)),
                             ((1, 2, 6, 9), (1, 2, 3, 3)), ((1, 2, 5, 7), (1, 2, 4, 10))):
            x = rng.standard_normal(shape).astype(np.float32)
            options = dict(mode="nearest", coordinate_transformation_mode=ctm,
                           nearest_mode=nearest)
            p = spec.check_resize(x, sizes=sizes, **options)
            native += native_resampling(p) == "resampling_nearest"
            got = be.to_numpy(be.resize(be.asarray(x), sizes=sizes, **options))
            np.testing.assert_array_equal(got, upsampling_reference.resize(x, p, np.float32))
    assert (native > 0) == nearest.startswith("round")  # floor/ceil pick otherwise here


def test_systolic_counts_the_array_and_the_vector_unit(rng):
    from hwbench.backends import get_backend

    be = get_backend("systolic")
    x, w, b, params = _conv_t_case(rng, CONV_T[1])
    be.reset_counters()
    be.conv_transpose2d(be.asarray(x), be.asarray(w), be.asarray(b), **params)
    ops = {row["op"] for row in be.simulated_counters()["layers"]}
    assert {"gemm", "col2im", "bias"} <= ops
    assert be.simulated_counters()["macs"] > 0
    be.reset_counters()
    be.resize(be.asarray(np.ones((1, 2, 3, 5), np.float32)), sizes=(1, 2, 6, 9), mode="cubic")
    counters = be.simulated_counters()
    assert {row["op"] for row in counters["layers"]} == {"resize"}
    assert sum(row["calls"] for row in counters["layers"]) == 2  # one pass per axis
    assert counters["vector_cycles"] > 0


X = np.ones((1, 2, 3, 3), np.float32)
W = np.ones((2, 3, 2, 2), np.float32)
CONV_T_BAD = [
    (dict(x=X.astype(np.float64)), DTypeError, "'x'"),
    (dict(w=W.astype(np.int8)), DTypeError, "'w'"),
    (dict(x=X[0]), ArgumentError, "'x'"),
    (dict(w=np.ones((3, 3, 2, 2), np.float32)), ArgumentError, "'w'"),
    (dict(bias=np.ones(4, np.float32)), ArgumentError, "'bias'"),
    (dict(stride=0), ArgumentError, "'stride'"),
    (dict(dilation=(1, -1)), ArgumentError, "'dilation'"),
    (dict(groups=3), ArgumentError, "groups"),
    (dict(padding=(2, 2, 2, 2)), ArgumentError, "'padding'"),
    (dict(padding=1.5), ArgumentError, "'padding'"),
    (dict(output_padding=-1), ArgumentError, "'output_padding'"),
]


@pytest.mark.parametrize("bad", CONV_T_BAD, ids=lambda b: str(sorted(b[0])))
def test_conv_transpose2d_bad_input_raises_named_errors(backend, bad):
    changes, error, match = bad
    args = dict(x=X, w=W, bias=None, stride=1, padding=0, dilation=1, groups=1)
    args.update(changes)
    with pytest.raises(error, match=match):
        backend.conv_transpose2d(args.pop("x"), args.pop("w"), **args)


RESIZE_BAD = [
    (dict(), ArgumentError, "exactly one"),
    (dict(scales=(1, 1, 2, 2), sizes=(1, 1, 6, 6)), ArgumentError, "exactly one"),
    (dict(scales=(2, 2)), ArgumentError, "'scales'"),
    (dict(scales=(1, 1, -2, 2)), ArgumentError, "'scales'"),
    (dict(sizes=(1, 1, 0, 2)), ArgumentError, "'sizes'"),
    (dict(sizes=(6,), axes=[4]), ArgumentError, "'axes'"),
    (dict(sizes=(6, 6), axes=[2, -2]), ArgumentError, "'axes'"),
    (dict(sizes=(1, 1, 6, 6), mode="area"), ArgumentError, "'mode'"),
    (dict(sizes=(1, 1, 6, 6), coordinate_transformation_mode="x"), ArgumentError,
     "coordinate_transformation_mode"),
    (dict(sizes=(1, 1, 6, 6), nearest_mode="up"), ArgumentError, "'nearest_mode'"),
    (dict(sizes=(1, 1, 6, 6), antialias=True), ArgumentError, "'antialias'"),
    (dict(sizes=(1, 1, 6, 6), mode="linear", coordinate_transformation_mode=
          "tf_crop_and_resize"), ArgumentError, "'roi'"),
    (dict(scales=(1, 1, 2, 2), keep_aspect_ratio_policy="not_larger"), ArgumentError,
     "keep_aspect_ratio_policy"),
    (dict(sizes=(1, 1, 6, 6), cubic_coeff_a=float("nan")), ArgumentError, "cubic_coeff_a"),
    (dict(scales=(1, 1, 0.1, 1)), ArgumentError, "empty output"),
]


@pytest.mark.parametrize("bad", RESIZE_BAD, ids=lambda b: str(sorted(b[0])))
def test_resize_bad_input_raises_named_errors(backend, bad):
    changes, error, match = bad
    with pytest.raises(error, match=match):
        backend.resize(X, **changes)


def test_resize_refuses_a_non_float32_input(backend):
    with pytest.raises(DTypeError, match="'x'"):
        backend.resize(X.astype(np.float16), scales=(1, 1, 2, 2))


def test_graph_refuses_3d_conv_transpose_naming_the_node():
    from hwbench.graph.ir import Node
    from hwbench.graph.ops.upsampling import conv_transpose_args

    node = Node("ConvTranspose", ["x", "w"], ["y"], {}, name="up3d")
    with pytest.raises(UnsupportedError, match="up3d.*1-D and 2-D"):
        conv_transpose_args(node, (1, 1, 3, 4, 5), (1, 2, 3, 3, 3))


def test_cuda_resize_and_conv_transpose_code_paths_without_a_gpu(rng):
    """The cuda mixin's code with NumPy standing in for CuPy (no GPU here): Resize's table
    passes exactly as on the numpy backend, and ConvTranspose's GEMM columns and its
    col2im RawKernel launch (grid, block and the arguments its CUDA source reads)."""
    import types

    from hwbench.backends import get_backend
    from hwbench.backends.cuda import upsampling

    launches = []

    def raw_kernel(source, name):
        assert name in source
        return lambda grid, block, args: launches.append((grid, block, args))

    fake_cp = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np)
                                       if not k.startswith("_")}, RawKernel=raw_kernel)

    class Fake(upsampling.UpsamplingKernels):
        cp = fake_cp
        kernels = types.SimpleNamespace(_get=lambda key, build: build())

        def _dev(self, x):
            return x

    numpy_be = get_backend("numpy")
    for shape, sizes, scales, options in RESIZE:
        x = rng.standard_normal(shape).astype(np.float32)
        p = spec.check_resize(x, scales, sizes, **options)
        np.testing.assert_array_equal(Fake()._resize(p, x), numpy_be._resize(p, x))
    x, w, b, params = _conv_t_case(rng, CONV_T[1])
    p = spec.check_conv_transpose2d(x, w, b, **params)
    out = Fake()._conv_transpose2d(p, x, w, b)
    ((grid, block, args),) = launches
    total = int(np.prod(p.output_shape))
    assert out.shape == p.output_shape and grid[0] * block[0] >= total > (grid[0] - 1) * block[0]
    assert args[0] == total and list(args[1][[9, 10, 13]]) == [1, 0, 2] and args[6] == 1
    # the GEMM's columns as col2im reads them: (groups, K/g·R·S, N·H·W), ld and group stride
    cols, ld, gstride = args[2], args[3], args[4]
    a, bm = gemm_operands(x, w, p)
    np.testing.assert_allclose(cols, np.stack([a[g].T @ bm[g] for g in range(p.groups)]),
                               rtol=1e-5, atol=1e-5)
    assert (ld, gstride) == (p.n * p.h * p.w, cols.shape[1] * ld)


@pytest.mark.parametrize("kernel", ["sgemm_packed", "sgemm_tiled"])
def test_opencl_conv_transpose_on_either_device_gemm(rng, kernel):
    """The opencl lowering (pack, grouped GEMM, col2im gather) on both GEMM kernels."""
    from hwbench.backends.opencl import OpenclBackend
    from hwbench.pytest_plugin import availability

    ok, why = availability("opencl")
    if not ok:
        pytest.skip(why)
    be = OpenclBackend(gemm_kernel=kernel)
    for case in CONV_T:
        x, w, b, params = _conv_t_case(rng, case)
        p = spec.check_conv_transpose2d(x, w, b, **params)
        got = be.conv_transpose2d(be.asarray(x), be.asarray(w),
                                  None if b is None else be.asarray(b), **params)
        assert_close(be.to_numpy(got), upsampling_reference.conv_transpose2d(x, w, b, p),
                     k=p.c // p.groups * p.r * p.s)


@pytest.mark.parametrize("case", RESIZE, ids=lambda c: f"{c[0]}-{c[3].get('mode')}")
def test_opencl_resize_a_block_per_work_item_gives_the_same_bits(rng, case, monkeypatch):
    """opencl on CPUs: ``resize_axis_rows`` (a block of outputs per work-item) and
    ``resize_axis`` (one per output) sum the same taps in the same order."""
    from hwbench.backends import get_backend
    from hwbench.backends.opencl import upsampling
    from hwbench.pytest_plugin import availability

    ok, why = availability("opencl")
    if not ok:
        pytest.skip(f"backend opencl unavailable: {why}")
    be = get_backend("opencl:pthread")
    if not be.dev.is_cpu:
        pytest.skip("resize_axis_rows runs on CPU devices only")
    shape, sizes, scales, options = case
    x = be.asarray(rng.standard_normal(shape).astype(np.float32))
    runs = []
    for least in (1, 1 << 30):  # every pass by blocks, then none
        monkeypatch.setattr(upsampling, "ROWS_MIN_OUTER", least)
        runs.append(be.to_numpy(be.resize(x, scales, sizes, **options)))
    assert runs[0].tobytes() == runs[1].tobytes()
