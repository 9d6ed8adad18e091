#!/usr/bin/env bash
# Every CUDA (and OpenCL-on-the-GPU) test and benchmark of hwbench, in one call on a machine
# with an NVIDIA GPU -- written for the lent H200 of the device tool (see docs/cuda.md,
# "the lent GPU"), usable on any CUDA 13 machine with CuPy and PyTorch.
#
#   scripts/gpu-check.sh [STAGE ...]     STAGE: env tests bench kernels models (default: all)
#
# One device-tool call may run 10 minutes: run "env tests bench" in one call and
# "kernels models" in the next (each stage has a timeout: T_TESTS, T_BENCH, T_KERNELS,
# T_MODELS seconds). MODELS (default all), BATCHES (default 1,64) and PEERS (default none:
# the harness's torch peer runs PyTorch on the CPU, which at batch 64 costs minutes and
# compares nothing on the GPU; cuda_bench.py compares with PyTorch on the GPU) narrow the
# model run.
#
# Results land in $OUT (the device tool brings that folder back; elsewhere ./gpu-out):
#   log.txt           everything printed, every stage
#   pytest.txt        the tests stage's whole pytest output
#   cuda-bench.json   the acceptance measurements (scripts/cuda_bench.py)
#   results/          hwbench's own JSON (kernels-*.json, models-*.json), the roofline PNG
#   models.md         the `hwbench run` summary table
# The device tool returns at most 8 files from $OUT, two folders deep: keep it that way.
set -uo pipefail

OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT/results"
LOG=$OUT/log.txt
export PYTHONUNBUFFERED=1
STAGES=${*:-env tests bench kernels models}
T_TESTS=${T_TESTS:-240} T_BENCH=${T_BENCH:-240} T_KERNELS=${T_KERNELS:-120}
T_MODELS=${T_MODELS:-420}
MODELS=${MODELS:-all} BATCHES=${BATCHES:-1,64} PEERS=${PEERS:-}
TESTS_K=${TESTS_K:-cuda or opencl}  # 11,238 tests, more than one call's time: split by -k
PY=python3

say() { echo "== $* ($(date +%H:%M:%S))" | tee -a "$LOG"; }

# Packages the image lacks travel as wheels in .whl (docs/cuda.md: the pip download commands).
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || { echo "wheel install failed" | tee -a "$LOG"; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# hwbench itself from this working tree, not installed (its workers inherit PYTHONPATH).
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

# NVIDIA's OpenCL driver as an ICD, so that the opencl backend sees the GPU too.
if [ -e /usr/local/nvidia/lib64/libnvidia-opencl.so.1 ]; then
    mkdir -p /tmp/icd
    echo /usr/local/nvidia/lib64/libnvidia-opencl.so.1 > /tmp/icd/nvidia.icd
    export OCL_ICD_VENDORS=/tmp/icd
fi

hw() { $PY -m hwbench.cli "$@"; }

for stage in $STAGES; do
    case $stage in
    env)
        say "environment"
        { nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
              --format=csv 2>&1
          $PY - <<'EOF'
import ctypes, json, platform
out = {"python": platform.python_version()}
for name in ("numpy", "cupy", "torch", "onnx", "onnxruntime", "pyopencl", "nvmath"):
    try:
        out[name] = __import__(name).__version__
    except Exception as exc:  # noqa: BLE001
        out[name] = f"missing ({type(exc).__name__})"
try:
    import cupy
    out["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    out["cuda_driver"] = cupy.cuda.runtime.driverGetVersion()
except Exception as exc:  # noqa: BLE001
    out["cupy_error"] = str(exc)
print(json.dumps(out, indent=1))
EOF
          hw list
        } 2>&1 | tee -a "$LOG"
        ;;
    tests)
        say "pytest -k '$TESTS_K'"
        # The whole pytest output goes to pytest.txt (a tail alone hid which test failed
        # when the stage ran out of time); the log keeps its last lines.
        timeout "$T_TESTS" $PY -m pytest -q -p no:cacheprovider tests -k "$TESTS_K" \
            -rfEs --durations=15 > "$OUT/pytest.txt" 2>&1
        echo "pytest exit status $? (124: the stage ran out of time)" | tee -a "$LOG"
        grep -E "^(FAILED|ERROR) " "$OUT/pytest.txt" | head -n 60 | tee -a "$LOG"
        tail -n 25 "$OUT/pytest.txt" | tee -a "$LOG"
        ;;
    bench)
        say "acceptance measurements (scripts/cuda_bench.py)"
        timeout "$T_BENCH" $PY scripts/cuda_bench.py --out "$OUT/cuda-bench.json" 2>&1 \
            | tail -n 120 | tee -a "$LOG"
        ;;
    kernels)
        say "hwbench kernels, headline shapes, cuda and opencl beside torch"
        backends=cuda
        if $PY -c "import pyopencl" 2>/dev/null; then backends=cuda,opencl; fi
        timeout "$T_KERNELS" $PY -m hwbench.cli kernels --backend "$backends" --shapes headline \
            --batch 64 --peers torch --no-check-finite --max-time 2 \
            --output "$OUT/results" 2>&1 | tail -n 80 | tee -a "$LOG"
        ;;
    models)
        say "hwbench run --model $MODELS --batch $BATCHES, fp32 and int8"
        peers=()
        if [ -n "$PEERS" ]; then peers=(--peers "$PEERS"); fi
        timeout "$T_MODELS" $PY -m hwbench.cli run --backend cuda --model "$MODELS" \
            --batch "$BATCHES" --precision fp32,int8 "${peers[@]}" --max-time 2 --repeats 5 \
            --output "$OUT/results" --markdown "$OUT/models.md" 2>&1 \
            | tail -n 80 | tee -a "$LOG"
        ;;
    *)
        echo "unknown stage '$stage' (env tests bench kernels models)" | tee -a "$LOG"
        exit 2
        ;;
    esac
done
say "done; files in $OUT"
ls -R "$OUT" | tee -a "$LOG"
