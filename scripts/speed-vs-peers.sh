#!/usr/bin/env bash
# hwbench's cpu backend beside its whole-model peers (issue 16): every zoo model at batch 1
# and 8, hwbench `cpu`, onnxruntime and PyTorch (the ONNX graph converted to torch calls),
# each engine in its own worker process, same inputs and weights, the same thread count,
# median of REPEATS timed runs. Writes results/MACHINE/models-HOST-STAMP.json; the tables
# `models-peers` (docs/results.md) and `models-peers-summary` (README) render from it once
# hwbench/harness/results/peer_tables.py names the file:
#   python -m hwbench.harness.results.doc_tables
#
#   MODELS   zoo models (default all: 19 models, ~1-2 h on a quiet 2-core machine)
#   THREADS  threads for every engine (default 2)
#   REPEATS  timed runs per case, median reported (default 5, at least 5)
#   MACHINE  results folder (default amd-epyc-zen4-2core)
#   Extra arguments go to `hwbench run`, e.g. --dim sequence=32 --max-time 3.
set -euo pipefail
cd "$(dirname "$0")/.."
MACHINE=${MACHINE:-amd-epyc-zen4-2core}
REPEATS=${REPEATS:-5}
if [ "$REPEATS" -lt 5 ]; then echo "speed-vs-peers.sh: REPEATS must be at least 5" >&2; exit 2; fi
mkdir -p "results/$MACHINE"
PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} exec "${PYTHON:-python}" -c "import sys, hwbench.cli; sys.exit(hwbench.cli.main())" run \
    --backend cpu --peers onnxruntime,torch --model "${MODELS:-all}" --batch 1,8 \
    --precision fp32 --threads "${THREADS:-2}" --repeats "$REPEATS" --no-roofline \
    --output "results/$MACHINE" "$@"
