"""The opencl backend's own behaviour: device selection, the program cache, build errors
and compiler crashes as clean exceptions, both GEMM kernels, tuning parameters."""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import pytest
from backend_marks import needs_backend
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import assert_close

from hwbench.backends import backend_class, get_backend
from hwbench.errors import ArgumentError, HwbenchError, NativeLibraryError
from hwbench.kernels import reference

pytestmark = needs_backend("opencl")


@pytest.fixture(scope="module")
def be():
    return get_backend("opencl")


def _entries():
    from hwbench.backends.opencl import runtime

    return runtime.discover()


# -- device selection ------------------------------------------------------------------------
def test_devices_lists_the_default_first_and_every_device():
    """Every device but PoCL's basic one (selected by name: ``opencl:basic``)."""
    from hwbench.backends.opencl import runtime

    names = backend_class("opencl").devices()
    entries = _entries()
    assert sorted(names, key=int) == [str(e.index) for e in entries if not e.pocl_basic]
    assert names[0] == str(runtime.default_index(entries))
    versions = backend_class("opencl").versions()
    assert all(f"opencl:{e.index}" in versions for e in entries)


def test_pocl_basic_device_listed_after_pthread():
    """Unless the user sets POCL_DEVICES, PoCL's basic device is there too, after its
    pthread one: the default device and ``opencl:N`` stay what they were."""
    from hwbench.backends.opencl import runtime

    entries = _entries()
    pocl = [e for e in entries if "pocl" in e.vendor.lower()]
    if not pocl or os.environ.get("POCL_DEVICES") != runtime.POCL_DEVICES_DEFAULT:
        pytest.skip("no PoCL platform, or POCL_DEVICES chosen by the user")
    assert [e.name.split("-")[0] for e in pocl] == ["pthread", "basic"]
    assert not pocl[0].pocl_basic and pocl[1].pocl_basic
    assert not runtime.select(None).pocl_basic
    assert runtime.select("basic") == pocl[1]


def test_default_device_is_the_first_gpu_else_the_first_cpu():
    from hwbench.backends.opencl import runtime

    entries = _entries()
    chosen = entries[runtime.default_index(entries)]
    gpus = [e for e in entries if e.kind == "GPU"]
    cpus = [e for e in entries if e.kind == "CPU"]
    assert chosen == (gpus or cpus or list(entries))[0]


def test_select_by_index_and_by_name_substring():
    entry = _entries()[0]
    by_index = get_backend("opencl:0")
    assert by_index.info()["device_name"] == entry.name
    assert by_index.full_name == "opencl:0"
    word = entry.name.split()[-1].lower()
    assert get_backend(f"opencl:{word}").info()["device_name"] == entry.name


@pytest.mark.parametrize("selector", ["999", "no-such-device-anywhere"])
def test_bad_device_names_the_backend_argument(selector):
    with pytest.raises(ArgumentError, match="'backend'"):
        get_backend(f"opencl:{selector}")


def test_info_reports_platform_driver_and_math_mode(be):
    info = be.info()
    for key in ("platform", "device_name", "driver_version", "math_mode", "gemm_kernel",
                "gemm_params"):
        assert info[key] not in (None, ""), key
    assert info["math_mode"] == "fp32"


# -- arrays stay on the device -----------------------------------------------------------------
def test_results_are_device_arrays_until_to_numpy(be, rng):
    import pyopencl.array as cla

    a = be.asarray(rng.standard_normal((8, 8)).astype(np.float32))
    y = be.relu(be.gemm(a, a))
    assert isinstance(y, cla.Array)
    be.synchronize()
    assert isinstance(be.to_numpy(y), np.ndarray)


def test_zero_dim_arrays_keep_their_shape(be):
    assert be.asarray(np.float32(2.0)).shape == ()


def test_device_seconds_come_from_profiling_events(be, rng):
    a = be.asarray(rng.standard_normal((64, 64)).astype(np.float32))
    out, seconds = be.device_seconds(be.gemm, a, a)
    assert out.shape == (64, 64)
    assert 0 < seconds < 10


# -- programs: cache, build errors, compiler crashes ------------------------------------------
BROKEN = "__kernel void broken(__global float *x) { x[0] = undeclared_name; }"
# PoCL 3.0's LLVM aborts ("Cannot select") compiling fma() on float16 vectors, and only
# when the kernel first runs: the probe must catch it in its child process.
CRASHES_POCL = """
__kernel void crash(__global float16 *a, __global float16 *b, int n) {
    size_t i = get_global_id(0);
    if (i < n) b[i] = fma(a[i], a[i], b[i]);
}
"""


def test_program_cache_hits(be, rng):
    x = be.asarray(rng.standard_normal(100).astype(np.float32))
    be.sigmoid(x)
    builds, cached = be.compiler.builds, be.compiler.cached_programs
    first = be._elementwise()
    for _ in range(3):
        be.sigmoid(x)
        assert be._elementwise() is first
    assert (be.compiler.builds, be.compiler.cached_programs) == (builds, cached)


def test_one_gemm_source_gives_a_program_per_accumulator_define_and_text(be):
    """sgemm_packed and gemm_int8_packed share gemm_packed.cl: its INT8 define (as any
    other, or an edit of the text) gives a program of its own, under its own cache key."""
    from hwbench.backends.opencl.compiler import kernel_source

    launches = {"sgemm_packed": (1, 1, 1), "pack_a": (16, 1, 1), "pack_b": (16, 1, 1)}
    fp32 = be.compiler.program("gemm_packed", {}, launches)
    assert be.compiler.program("gemm_packed", {}, launches) is fp32
    int8 = be.compiler.program("gemm_packed", {"INT8": 1}, {"gemm_int8_packed": (1, 1, 1)})
    tile = be.compiler.program("gemm_packed", {"MR": 4}, launches)
    edited = be.compiler.program("gemm_packed", {}, launches,
                                 source=kernel_source("gemm_packed") + "\n// edited\n")
    assert len({fp32.key, int8.key, tile.key, edited.key}) == 4
    assert fp32.kernel("sgemm_packed") is not None  # each build defines its own kernel
    assert int8.kernel("gemm_int8_packed") is not None


@pytest.mark.parametrize("probe", [True, False])
def test_build_error_is_a_clean_exception_with_the_log(probe, tmp_path, monkeypatch):
    from hwbench.backends.opencl.compiler import BuildError, Compiler

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    compiler = Compiler(get_backend("opencl").dev, probe=probe)
    with pytest.raises(BuildError) as info:
        compiler.program("broken", {}, {"broken": (1,)}, source=BROKEN)
    assert isinstance(info.value, NativeLibraryError) and isinstance(info.value, HwbenchError)
    assert "undeclared_name" in info.value.log
    assert "broken" in str(info.value)


def test_probe_marks_programs_it_checked(tmp_path, monkeypatch):
    from hwbench.backends.opencl.compiler import Compiler

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    source = "__kernel void ok(__global float *x, int n) { if (get_global_id(0) < n) x[0] = 1; }"
    device = get_backend("opencl").dev
    first = Compiler(device, probe=True)
    first.program("ok", {"UNIQUE": 7}, {"ok": (4,)}, source=source)
    assert first.probes == 1
    second = Compiler(device, probe=True)  # a new process would start like this
    second.program("ok", {"UNIQUE": 7}, {"ok": (4,)}, source=source)
    assert second.probes == 0
    assert len(list((tmp_path / "opencl-probed").iterdir())) == 1


def test_device_compiler_crash_does_not_take_the_process_down(tmp_path, monkeypatch):
    from hwbench.backends.opencl.compiler import BuildError, Compiler

    be = get_backend("opencl")
    if "Portable Computing Language" not in be.info()["platform"]:
        pytest.skip("the known compiler crash is PoCL's; this device is not PoCL")
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    compiler = Compiler(be.dev, probe=True)
    try:
        compiler.program("crash", {}, {"crash": (4,)}, source=CRASHES_POCL)
    except BuildError as exc:
        assert "crashed the device compiler" in str(exc) or "failed to build" in str(exc)
    else:
        pytest.skip("this PoCL compiles fma on float16 vectors (the crash is fixed)")
    # ... and the process goes on working.
    x = be.asarray(np.ones(4, np.float32))
    np.testing.assert_allclose(be.to_numpy(be.sigmoid(x)), 1 / (1 + np.exp(-1.0)), rtol=1e-6)


def test_launch_errors_name_the_kernel_and_the_cause():
    from hwbench.backends.opencl.compiler import launch_error

    exc = launch_error("sgemm_tiled", (256, 256, 1), (16, 16, 1),
                       RuntimeError("clEnqueueNDRangeKernel failed: OUT_OF_RESOURCES"))
    assert isinstance(exc, NativeLibraryError)
    assert "sgemm_tiled" in str(exc) and "ran out of resources" in str(exc)


# -- both GEMM kernels, any parameters ---------------------------------------------------------
TILED = {"TSM": 32, "TSN": 32, "TSK": 8, "WPTM": 2, "WPTN": 2}  # 256 work-items


@pytest.mark.parametrize("kernel,params", [
    ("sgemm_tiled", None),
    ("sgemm_tiled", TILED),
    ("sgemm_packed", {"MR": 4, "MBLK": 4, "NBLK": 2, "KC": 128, "WIDE": 0}),
    ("sgemm_packed", {"MR": 6, "MBLK": 16, "NBLK": 8, "KC": 384, "WIDE": 1}),
])
def test_gemm_kernels_and_parameters_agree_with_the_reference(kernel, params, rng):
    be = get_backend("opencl", gemm_kernel=kernel, gemm_params=params)
    for m, n, k, ta, tb in [(1, 1, 1, False, False), (70, 45, 300, True, False),
                            (33, 130, 17, False, True), (129, 64, 129, True, True)]:
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
        bias = rng.standard_normal((1, n)).astype(np.float32)
        out = be.to_numpy(be.gemm(be.asarray(a), be.asarray(b), be.asarray(bias), ta, tb))
        assert_close(out, reference.gemm(a, b, bias, ta, tb), k)
    x = rng.standard_normal((2, 6, 9, 9)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    kw = dict(stride=2, padding=(1, 0, 1, 2), dilation=1, groups=2)
    out = be.to_numpy(be.conv2d(be.asarray(x), be.asarray(w), **kw))
    assert_close(out, reference.conv2d(x, w, None, **kw), 27)

@pytest.mark.parametrize("kernel", ["sgemm_packed", "sgemm_tiled"])
@pytest.mark.parametrize("shape, w_shape, kw", [
    ((2, 5, 20, 37), (7, 5, 3, 3), dict(padding=1)),              # runs inside padded rows
    ((3, 4, 9, 11), (6, 4, 1, 1), dict()),                        # 1x1: runs cross images
    ((2, 4, 17, 33), (6, 4, 1, 1), dict(stride=2)),               # strided 1x1
    ((1, 3, 18, 40), (4, 3, 3, 5), dict(padding=(0, 2, 1, 3), dilation=2)),
])
def test_im2col_forms_agree_with_the_reference(kernel, shape, w_shape, kw, rng):
    """Both im2col kernels: the CPU's panel form (its contiguous fast paths and the
    element-wise rest) and the GPU's element form."""
    be = get_backend("opencl", gemm_kernel=kernel)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    out = be.to_numpy(be.conv2d(be.asarray(x), be.asarray(w), **kw))
    assert_close(out, reference.conv2d(x, w, None, **kw), int(np.prod(w_shape[1:])))


# -- direct convolution for few output channels per group ---------------------------------
@pytest.mark.parametrize("c, k, groups, stride, padding, dilation", [
    (6, 6, 6, 1, 1, 1),            # depthwise 3x3
    (8, 8, 8, 2, (1, 0, 1, 2), 1),  # depthwise, strided, asymmetric padding
    (4, 12, 4, 1, 2, 2),           # channel multiplier 3, dilated
    (5, 2, 1, 1, 0, 1),            # two output channels, no groups
    (3, 1, 1, 2, 1, 1),            # a single output channel
])
def test_direct_conv_matches_the_reference_with_its_epilogue(be, rng, c, k, groups, stride,
                                                             padding, dilation):
    from hwbench.backends.opencl import direct
    from hwbench.kernels import spec

    x = rng.standard_normal((2, c, 11, 9)).astype(np.float32)
    w = rng.standard_normal((k, c // groups, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(k).astype(np.float32)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert direct.prefers_direct(spec.check_conv2d(x, w, bias, **kw))
    plain = be.to_numpy(be.conv2d(be.asarray(x), be.asarray(w), be.asarray(bias), **kw))
    expected = reference.conv2d(x, w, bias, **kw)
    assert_close(plain, expected, 9 * c // groups)
    residual = rng.standard_normal(expected.shape).astype(np.float32)
    fused = be.to_numpy(be.conv2d(be.asarray(x), be.asarray(w), be.asarray(bias), **kw,
                                  residual=be.asarray(residual), activation="relu"))
    assert_close(fused, np.maximum(expected + residual, 0), 9 * c // groups)


def test_direct_conv_is_only_chosen_where_the_gemm_tile_would_go_to_waste():
    from hwbench.backends.opencl import direct
    from hwbench.kernels import spec

    def problem(c, k, groups):
        x = np.zeros((1, c, 8, 8), np.float32)
        return spec.check_conv2d(x, np.zeros((k, c // groups, 1, 1), np.float32), None,
                                 groups=groups)

    assert direct.prefers_direct(problem(136, 136, 136))  # ShuffleNet's depthwise
    assert not direct.prefers_direct(problem(136, 136, 4))  # its grouped 1x1: 34 per group
    assert not direct.prefers_direct(problem(64, 64, 1))
    assert direct.prefers_direct(problem(3, 1, 1))  # a short sum per output
    assert not direct.prefers_direct(problem(65, 1, 1))  # a long one: the GEMM's
    assert direct.direct_local(8) == (8, 8, 1) and direct.direct_local(100) == (16, 4, 1)

@pytest.mark.parametrize("kwargs,name", [
    (dict(gemm_kernel="cublas"), "gemm_kernel"),
    (dict(gemm_kernel="sgemm_packed", gemm_params={"MR": 5, "MBLK": 8, "NBLK": 4, "KC": 256}),
     "gemm_params"),
    (dict(gemm_kernel="sgemm_tiled", gemm_params={"TSM": 64}), "gemm_params"),
])
def test_bad_gemm_options_name_the_argument(kwargs, name):
    with pytest.raises(ArgumentError, match=f"'{name}'"):
        get_backend("opencl", **kwargs)


# -- tuned parameters --------------------------------------------------------------------------
def test_tuned_parameters_are_stored_per_device_and_used(tmp_path, monkeypatch):
    from hwbench.backends.opencl import tile_params

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    be = get_backend("opencl")
    kernel = be.info()["gemm_kernel"]
    assert not be.info()["gemm_params_tuned"]
    winner = tile_params.candidates(kernel)[1]
    tile_params.store(be.dev.cache_key, kernel, winner, 123.4, (256, 256, 256))
    assert tile_params.tuned(be.dev.cache_key, kernel) == winner
    assert tile_params.tuned("some other device | driver 0", kernel) is None
    tuned = get_backend("opencl")
    assert tuned.info()["gemm_params"] == winner and tuned.info()["gemm_params_tuned"]


@pytest.mark.parametrize("content", ["not json", "[]", '{"devices": {"x": 1}}'])
def test_malformed_tuning_file_falls_back_to_defaults(tmp_path, monkeypatch, content):
    from hwbench.backends.opencl import tile_params

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    (tmp_path / "opencl-tuning.json").write_text(content)
    be = get_backend("opencl")
    assert be.info()["gemm_params"] == tile_params.DEFAULTS[be.info()["gemm_kernel"]]


def test_out_of_space_tuned_parameters_are_ignored(tmp_path, monkeypatch):
    from hwbench.backends.opencl import tile_params

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    be = get_backend("opencl")
    kernel = be.info()["gemm_kernel"]
    bad = {k: 7 for k in tile_params.SPACES[kernel]}
    data = {"devices": {be.dev.cache_key: {kernel: {"params": bad}}}}
    (tmp_path / "opencl-tuning.json").write_text(json.dumps(data))
    assert get_backend("opencl").info()["gemm_params"] == tile_params.DEFAULTS[kernel]


# -- hwbench tune ------------------------------------------------------------------------------
def test_tune_command_times_the_defaults_and_stores_the_winner(tmp_path, monkeypatch, capsys):
    from hwbench.backends.opencl import tile_params
    from hwbench.cli import main

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    assert main(["tune", "--backend", "opencl", "--size", "64", "--budget", "0"]) == 0
    assert "GFLOP/s" in capsys.readouterr().out
    be = get_backend("opencl")
    kernel = be.info()["gemm_kernel"]
    assert tile_params.tuned(be.dev.cache_key, kernel) == tile_params.DEFAULTS[kernel]



def test_tune_command_tunes_the_int8_gemm_in_gop_per_second(tmp_path, monkeypatch, capsys):
    from hwbench.backends.opencl import tile_params
    from hwbench.cli import main

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    assert main(["tune", "--backend", "opencl", "--op", "gemm_int8", "--size", "64",
                 "--budget", "0"]) == 0
    out = capsys.readouterr().out
    assert "GOP/s" in out and "GFLOP/s" not in out
    be = get_backend("opencl")
    kernel = be.info()["int8_kernel"]
    assert tile_params.tuned(be.dev.cache_key, kernel) == tile_params.DEFAULTS[kernel]

def test_tune_command_refuses_other_backends(capsys):
    from hwbench.cli import main

    assert main(["tune", "--backend", "cpu"]) == 2
    assert "only opencl" in capsys.readouterr().out


# -- quantization on the device is bit-exact with the shared host math ------------------------
@pytest.mark.parametrize("axis,zp_dtype", [(None, np.uint8), (1, np.int8), (3, np.uint8)])
def test_quantize_and_dequantize_match_the_host_math_exactly(be, rng, axis, zp_dtype):
    from hwbench.kernels.quantization import dequantize, quantize

    x = (rng.standard_normal((2, 3, 4, 5)) * 60).astype(np.float32)
    x.flat[:5] = [0.5, 1.5, 2.5, -0.5, -2.5]  # ties: half to even
    if axis is None:
        scale, zp = np.float32(1.0), zp_dtype(7)
    else:
        scale = rng.uniform(0.1, 2.0, x.shape[axis]).astype(np.float32)
        scale[0] = 1.0
        zp = rng.integers(0, 100, x.shape[axis]).astype(zp_dtype)
    q = be.quantize_linear(be.asarray(x), scale, zp, axis=axis if axis is not None else 1)
    want = quantize(x, scale, zp, zp_dtype, axis)
    np.testing.assert_array_equal(be.to_numpy(q), want)
    y = be.dequantize_linear(q, scale, zp, axis=axis if axis is not None else 1)
    np.testing.assert_array_equal(be.to_numpy(y), dequantize(want, scale, zp, axis))


def test_work_groups_beyond_the_device_limit_are_unsupported_not_a_crash(be):
    from hwbench.errors import UnsupportedError

    too_big = be.dev.max_work_group_size + 1
    with pytest.raises(UnsupportedError, match="work-groups"):
        be.compiler.program("elementwise", {}, {"relu": (too_big,)})


@pytest.mark.parametrize("size,where", [(19, 18), (19, 3), (8, 7), (1, 0), (4099, 4098)])
def test_nan_screen_sees_every_element_vector_part_and_tail(be, size, where):
    x = np.ones(size, np.float32)
    x[where] = np.inf
    with pytest.raises(ArgumentError, match="'x'"):
        be.relu(be.asarray(x))
    x[where] = 1.0
    np.testing.assert_array_equal(be.to_numpy(be.relu(be.asarray(x))), x)


# -- the int8 GEMM kernels -----------------------------------------------------------------
def _int8_case(rng, m, n, k, a_dtype=np.uint8, b_dtype=np.int8):
    """Operands, per-row / per-column zero points, and the exact int64 answer."""
    ranges = {np.uint8: (0, 256), np.int8: (-128, 128)}
    a = rng.integers(*ranges[a_dtype], (m, k)).astype(a_dtype)
    b = rng.integers(*ranges[b_dtype], (k, n)).astype(b_dtype)
    za = rng.integers(*ranges[a_dtype], m).astype(a_dtype)
    zb = rng.integers(*ranges[b_dtype], n).astype(b_dtype)
    want = (a.astype(np.int64) - za[:, None]) @ (b.astype(np.int64) - zb[None, :])
    return a, b, za, zb, want


def _int8_ops_are_exact(be, rng):
    """gemm_int8 (all four signedness pairs, ragged and whole panels), qgemm and a grouped,
    padded, strided conv2d_int8 / qconv2d against the exact references."""
    for a_dtype, b_dtype in [(np.uint8, np.int8), (np.int8, np.uint8), (np.uint8, np.uint8),
                             (np.int8, np.int8)]:
        for m, n, k in [(1, 1, 1), (13, 21, 37), (70, 96, 300)]:
            a, b, za, zb, want = _int8_case(rng, m, n, k, a_dtype, b_dtype)
            out = be.to_numpy(be.gemm_int8(be.asarray(a), be.asarray(b), za, zb))
            np.testing.assert_array_equal(out, want)
    a, b = _int8_case(rng, 9, 40, 33)[:2]
    args = (np.float32(0.05), np.uint8(120), np.float32(0.02), np.int8(-2), np.float32(0.1),
            np.uint8(3))
    got = be.to_numpy(be.qgemm(be.asarray(a), args[0], args[1], be.asarray(b), *args[2:]))
    np.testing.assert_array_equal(got, reference.qgemm(a, *args[:2], b, *args[2:]))
    x = rng.integers(0, 256, (2, 4, 9, 8)).astype(np.uint8)
    w = rng.integers(-128, 128, (6, 2, 3, 3)).astype(np.int8)
    zw = rng.integers(-128, 128, 6).astype(np.int8)
    conv = dict(stride=(2, 1), padding=(1, 0, 2, 1), dilation=1, groups=2)
    got = be.to_numpy(be.conv2d_int8(be.asarray(x), be.asarray(w), np.uint8(7), zw, **conv))
    np.testing.assert_array_equal(got, reference.conv2d_int8(x, w, np.uint8(7), zw, **conv))
    bias = rng.integers(-5000, 5000, 6).astype(np.int32)
    qargs = (np.float32(0.02), np.uint8(7), np.float32(0.01), zw, np.float32(0.3),
             np.uint8(100), bias)
    got = be.to_numpy(be.qconv2d(be.asarray(x), qargs[0], qargs[1], be.asarray(w),
                                 *qargs[2:], **conv))
    np.testing.assert_array_equal(got, reference.qconv2d(x, *qargs[:2], w, *qargs[2:], **conv))


def test_int8_kernel_is_chosen_by_device_kind(be):
    from hwbench.backends.opencl import tile_params

    want = "gemm_int8_packed" if be.dev.is_cpu else "gemm_int8_tiled"
    assert be.info()["int8_kernel"] == want
    assert be.info()["int8_params"] == tile_params.DEFAULTS[want]


def test_packed_int8_gemm_is_exact_across_blocks_and_k_slices(rng):
    """Small tiles, so that every path runs: several row and column blocks, K in several
    KC slices (accumulating through C), an odd K, a last panel past N, whole panels."""
    be = get_backend("opencl", int8_kernel="gemm_int8_packed",
                     int8_params={"MR": 4, "MBLK": 4, "NBLK": 2, "KC": 256})
    for m, n, k in [(37, 64, 513), (50, 70, 600), (3, 160, 257)]:
        a, b, za, zb, want = _int8_case(rng, m, n, k)
        out = be.to_numpy(be.gemm_int8(be.asarray(a), be.asarray(b), za, zb))
        np.testing.assert_array_equal(out, want)


def test_packed_int8_kernel_is_exact(rng):
    be = get_backend("opencl", int8_kernel="gemm_int8_packed")
    _int8_ops_are_exact(be, rng)


def test_packed_int8_kernel_portable_multiply_add_is_exact(rng, monkeypatch):
    """The portable expression that replaces x86's vpmaddwd builtin elsewhere."""
    be = get_backend("opencl", int8_kernel="gemm_int8_packed")
    program = be.compiler.program
    seen = []

    def portable(name, defines, launches, **kwargs):
        if name == "gemm_packed" and defines.get("INT8"):
            defines = {**defines, "MADD_PORTABLE": 1}
            seen.append(name)
        return program(name, defines, launches, **kwargs)

    monkeypatch.setattr(be.compiler, "program", portable)
    _int8_ops_are_exact(be, rng)
    assert seen


def test_tiled_int8_kernel_forced_on_this_device_is_exact(rng):
    """The GPU-shaped kernel (local-memory tiles, barriers) compiles and is exact here too
    (on PoCL: slow, but the same program a GPU runs, bar the dot product)."""
    be = get_backend("opencl", int8_kernel="gemm_int8_tiled",
                     int8_params={"TSM": 32, "TSN": 32, "TSK": 16, "WPTM": 2, "WPTN": 4})
    assert be.info()["int8_kernel"] == "gemm_int8_tiled"
    _int8_ops_are_exact(be, rng)


@pytest.mark.parametrize("extensions,a_dtype,b_dtype,want", [
    ({"cl_khr_integer_dot_product"}, np.uint8, np.int8, "cl_khr_integer_dot_product"),
    ({"cl_arm_integer_dot_product_int8"}, np.int8, np.int8, "cl_arm_integer_dot_product_int8"),
    ({"cl_arm_integer_dot_product_int8"}, np.uint8, np.int8, None),  # arm_dot: one sign
    ({"cl_arm_integer_dot_product_int8", "cl_khr_integer_dot_product"}, np.uint8, np.uint8,
     "cl_khr_integer_dot_product"),
    ({"cl_khr_fp64"}, np.uint8, np.int8, None),
])
def test_dot_product_extension_is_chosen_from_the_device_extensions(extensions, a_dtype,
                                                                    b_dtype, want):
    from hwbench.backends.opencl.gemm_int8 import dot_extension

    assert dot_extension(frozenset(extensions), np.dtype(a_dtype), np.dtype(b_dtype)) == want


@pytest.mark.parametrize("extension,use_dot", [(None, 0), ("cl_khr_integer_dot_product", 1)])
def test_tiled_int8_kernel_uses_dot_only_where_the_device_reports_it(rng, monkeypatch,
                                                                     extension, use_dot):
    """A faked extension string selects the dot() variant (USE_DOT=1); compiled where the
    compiler lacks the feature (PoCL), the kernel's guard falls back, still exact. The
    packed (CPU) kernel never takes it."""
    be = get_backend("opencl", int8_kernel="gemm_int8_tiled",
                     int8_params={"TSM": 32, "TSN": 32, "TSK": 16, "WPTM": 2, "WPTN": 4})
    extensions = be.dev.extensions - {"cl_khr_integer_dot_product"}
    monkeypatch.setattr(be.dev, "extensions", extensions | ({extension} - {None}))
    program = be.compiler.program
    defines_seen = []

    def record(name, defines, launches, **kwargs):
        defines_seen.append(dict(defines))
        return program(name, defines, launches, **kwargs)

    monkeypatch.setattr(be.compiler, "program", record)
    a, b, za, zb, want = _int8_case(rng, 20, 30, 45)
    np.testing.assert_array_equal(
        be.to_numpy(be.gemm_int8(be.asarray(a), be.asarray(b), za, zb)), want)
    assert defines_seen[-1]["USE_DOT"] == use_dot
    assert be.info()["integer_dot_product"] == extension
    packed = get_backend("opencl", int8_kernel="gemm_int8_packed")
    monkeypatch.setattr(packed.dev, "extensions", extensions | {"cl_khr_integer_dot_product"})
    assert packed.int8_engine.dot_extension(np.dtype(np.uint8), np.dtype(np.int8)) is None


@pytest.mark.parametrize("kwargs,name", [
    (dict(int8_kernel="gemm_int8_naive"), "int8_kernel"),
    (dict(int8_kernel="gemm_int8_packed", int8_params={"MR": 6, "MBLK": 8, "NBLK": 4,
                                                       "KC": 300}), "int8_params"),
    (dict(int8_kernel="gemm_int8_tiled", int8_params={"TSM": 64, "TSN": 64, "TSK": 8,
                                                      "WPTM": 4, "WPTN": 4}), "int8_params"),
])
def test_bad_int8_options_name_the_argument(kwargs, name):
    with pytest.raises(ArgumentError, match=f"'{name}'"):
        get_backend("opencl", **kwargs)


def test_tuned_int8_parameters_are_stored_per_device_and_used(tmp_path, monkeypatch):
    from hwbench.backends.opencl import tile_params

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    be = get_backend("opencl")
    kernel = be.info()["int8_kernel"]
    assert not be.info()["int8_params_tuned"]
    winner = tile_params.candidates(kernel)[1]
    tile_params.store(be.dev.cache_key, kernel, winner, 99.0, (256, 256, 256))
    tuned = get_backend("opencl")
    assert tuned.info()["int8_params"] == winner and tuned.info()["int8_params_tuned"]
    assert tuned.info()["gemm_params"] == tile_params.DEFAULTS[tuned.info()["gemm_kernel"]]


def test_tune_search_of_the_int8_kernel_checks_exactly_and_stores(tmp_path, monkeypatch):
    from hwbench.backends.opencl import autotune, tile_params

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    be, trials = autotune.search(None, 64, 0, op="gemm_int8")
    kernel = be.info()["int8_kernel"]
    assert trials[0].params == tile_params.DEFAULTS[kernel] and trials[0].gflops
    assert tile_params.tuned(be.dev.cache_key, kernel) == tile_params.DEFAULTS[kernel]
    with pytest.raises(ArgumentError, match="'op'"):
        autotune.search(None, 64, 0, op="conv")


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(n=st.integers(1, 2), c=st.integers(1, 5), h=st.integers(1, 9), w=st.integers(1, 20),
       kg=st.integers(1, 4), r=st.integers(1, 4), s=st.integers(1, 4), stride=st.integers(1, 3),
       pads=st.tuples(*[st.integers(0, 2)] * 4), dil=st.integers(1, 2), groups=st.integers(1, 3),
       tiled=st.booleans())
def test_int8_conv_random_shapes_are_exact(n, c, h, w, kg, r, s, stride, pads, dil, groups,
                                           tiled):
    """The packed kernel's im2col (one work-item per output row and tap pair) and the
    tiled kernel's, at random geometry, per-filter zero points and odd tap counts."""
    c = c * groups
    if h + pads[0] + pads[2] < dil * (r - 1) + 1 or w + pads[1] + pads[3] < dil * (s - 1) + 1:
        return  # empty output: covered by the bad-input tests
    be = _int8_backend("gemm_int8_tiled" if tiled else "gemm_int8_packed")
    rng = np.random.default_rng(n + 7 * c + 31 * h + 131 * w)
    x = rng.integers(0, 256, (n, c, h, w)).astype(np.uint8)
    wt = rng.integers(-128, 128, (kg * groups, c // groups, r, s)).astype(np.int8)
    zx, zw = np.uint8(rng.integers(0, 256)), rng.integers(-128, 128, kg * groups).astype(np.int8)
    kw = dict(stride=stride, padding=pads, dilation=dil, groups=groups)
    got = be.to_numpy(be.conv2d_int8(be.asarray(x), be.asarray(wt), zx, zw, **kw))
    np.testing.assert_array_equal(got, reference.conv2d_int8(x, wt, zx, zw, **kw))


@functools.cache
def _int8_backend(kernel):
    params = {"gemm_int8_tiled": {"TSM": 32, "TSN": 32, "TSK": 16, "WPTM": 2, "WPTN": 4}}
    return get_backend("opencl", int8_kernel=kernel, int8_params=params.get(kernel))
