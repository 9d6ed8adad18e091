#!/usr/bin/env bash
# The ONNX node tests (tests/test_onnx_node*.py: each op family's kernel-level adapter and the
# one-node models through the graph layer) on every backend, recorded: which node tests
# passed on which backend, saved as results/MACHINE/node-tests-HOST-STAMP.json (the
# recorder: tests/node_test_record.py; the table of docs/ops.md is rendered from the newest
# such file by `python -m hwbench.harness.results.doc_tables`). Extra arguments go to
# pytest, e.g. `scripts/node-tests.sh -k Softmax`: the record then holds only those.
#
#   MACHINE  results folder (default amd-epyc-zen4-2core, the CI machine)
#   NOTE     a line for the record's notes (default: the CI VM is shared; see below)
#   PYTHON   interpreter (default python)
set -uo pipefail
cd "$(dirname "$0")/.."
MACHINE=${MACHINE:-amd-epyc-zen4-2core}
NOTE=${NOTE:-"run on the 2-core CI VM while other engineers' test runs shared it; pass/fail \
does not depend on load (nothing here is timed)"}
mkdir -p "results/$MACHINE"
out=results/$MACHINE/node-tests-$(hostname -s)-$(date -u +%Y%m%d-%H%M%S).json
start=$(date +%s)
PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} "${PYTHON:-python}" -m pytest -q -p no:cacheprovider \
    tests/test_onnx_node*.py --node-test-record "$out" --node-test-note "$NOTE" "$@"
status=$?
echo "node-tests.sh: $(( $(date +%s) - start )) s, pytest exit $status, record $out"
exit $status
