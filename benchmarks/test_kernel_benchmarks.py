"""pytest-benchmark suite: every kernel of the interface on every available backend.

Default: a CI-sized subset of the DeepBench (device/inference) and ResNet-50 shapes, and
two elementwise sizes; ``--full``: the whole DeepBench (server and device) and ResNet-50
sets. Each benchmark records its GFLOP/s (GOP/s for int8: ``extra_info["rate"]``), its
accuracy against the float64 / exact reference, and the backend's device and library
versions (see ``hwbench.harness.suites.benchmarking``)::

    python -m pytest benchmarks/test_kernel_benchmarks.py --benchmark-autosave \\
        --benchmark-save-data --benchmark-storage=results/MACHINE/benchmarks
    python -m pytest benchmarks/test_kernel_benchmarks.py --benchmark-compare \\
        --benchmark-compare-fail=median:10% --benchmark-storage=results/MACHINE/benchmarks
"""

from __future__ import annotations

import functools

from hwbench.harness.suites import kernel_suite
from hwbench.harness.suites.benchmarking import bench_kernel
from hwbench.kernels import shapes

GEMM_OPS = ("gemm", "gemm_int8", "qgemm")
# The CI subset: small-to-medium DeepBench inference problems (an RNN-style 35×700×2048,
# a GEMV, a 128×1500×1280) and ResNet-50's FC; a DeepBench 1×1 and 3×3 conv and three
# ResNet-50 layers (the 7×7 stem, a 3×3 at 56×56, a stride-2 3×3).
CI_GEMMS = ("db-device_gemm001_35x700x2048_NN", "db-device_gemm003_64x1x1216_NN",
            "db-device_gemm005_128x1500x1280_NN", "resnet50_fc")
CI_CONVS = ("db-device_conv002_n1_c256_56x56_k64_1x1_s1x1",
            "db-device_conv012_n1_c512_7x7_k512_3x3_s1x1", "resnet50_conv1",
            "resnet50_layer1.0.conv2", "resnet50_layer3.0.conv2")
# Elementwise sizes: 2^16 (768 KiB for sigmoid_backward's three arrays) stays in one core's
# L2; 2^24 (192 MiB) streams from DRAM. 2^20 (12 MiB) is left to --full: it fits the 32 MiB
# L3 this VM shares with its neighbours, and measured 262 µs on an idle machine and 530 µs
# while other processes ran, on `cpu` with the same code: a 2x swing from the neighbours.
CI_SIZES = (1 << 16, 1 << 24)
FULL_SIZES = (1 << 16, 1 << 20, 1 << 24)


def case_specs(full: bool) -> list[kernel_suite.CaseSpec]:
    gemms = (shapes.deepbench_gemms() + shapes.deepbench_gemms(device=True)
             + [shapes.resnet50_fc(1)])
    convs = (shapes.deepbench_convs() + shapes.deepbench_convs(device=True)
             + shapes.resnet50_convs(1))
    if not full:
        gemms = [g for g in gemms if g.name in CI_GEMMS]
        convs = [c for c in convs if c.name in CI_CONVS]
    specs = []
    for op in kernel_suite.OPS:
        chosen = gemms if op in GEMM_OPS else convs if op == "conv2d" else (
            FULL_SIZES if full else CI_SIZES)
        specs.extend(kernel_suite.CaseSpec(op, shape) for shape in dict.fromkeys(chosen))
    return specs


def pytest_generate_tests(metafunc):
    if "kernel_spec" in metafunc.fixturenames:
        specs = case_specs(metafunc.config.getoption("full", False))
        metafunc.parametrize("kernel_spec", specs, ids=[f"{s.op}-{s.name}" for s in specs])


@functools.lru_cache(maxsize=64)
def _case(spec: kernel_suite.CaseSpec) -> kernel_suite.Case:
    """Inputs and the float64 reference, made once and shared by every backend."""
    return kernel_suite.make_case(spec, seed=0, index=0)


def test_kernel(benchmark, backend, kernel_spec):
    benchmark.group = f"{kernel_spec.op} {kernel_spec.name}"
    info = bench_kernel(benchmark, backend, _case(kernel_spec))
    # a wrong answer is a failure, not a benchmark (backends whose math mode is not fp32,
    # e.g. systolic's int8-quantized float ops, have their error recorded, not judged)
    if "mismatches" in info:
        assert info["mismatches"] == 0, info
    elif info["backend_info"].get("math_mode", "fp32") == "fp32":
        assert info["rel_error"] < 1e-3, info
