#!/usr/bin/env bash
# The CI benchmark pass (docs/benchmarks.md): the default suites, hwbench cpu beside onnxruntime
# with one thread everywhere -- hwbench's backends, NumPy's BLAS, oneDNN/MKL's OpenMP, PoCL's
# pthreads and Intel OpenCL's TBB workers -- because multi-threaded kernels on a busy 2-core
# VM stall for whole scheduler slices. The committed baseline is the median of N runs of
# this same script (scripts/record-ci-baseline.sh); extra arguments go to pytest, e.g.
#   scripts/ci-benchmarks.sh --benchmark-json=.benchmarks/ci.json
set -euo pipefail
cd "$(dirname "$0")/.."
export HWBENCH_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    POCL_MAX_PTHREAD_COUNT=1 CL_CONFIG_CPU_TBB_NUM_WORKERS=1
exec python -m pytest benchmarks/test_kernel_benchmarks.py benchmarks/test_model_benchmarks.py \
    benchmarks/test_peer_ratios.py \
    -q -p no:cacheprovider --benchmark-save-data --benchmark-columns=median,iqr,rounds "$@"
