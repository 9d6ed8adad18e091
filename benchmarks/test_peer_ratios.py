"""pytest-benchmark suite: hwbench ``cpu`` beside onnxruntime on a few small zoo models
(issue 16), in the CI benchmark pass (scripts/ci-benchmarks.sh).

Per case two benchmarks in one group (``peers/MODEL/bBATCH/fp32``): hwbench's ``cpu``
session and onnxruntime's on the same graph, weights and inputs, at the same thread count.
The ``cpu`` one also records ``ratio_vs_onnxruntime``: onnxruntime's median time ÷ hwbench's,
measured in alternating rounds in this process (above 1: hwbench is faster). ``hwbench
compare --normalized`` against the committed baseline fails the pass on a slower ``cpu``
time; and where the baseline holds this benchmark's ratio, a ratio below
baseline ÷ ``RATIO_SLACK`` fails here, since a slowdown that onnxruntime does not share
is a regression whatever the machine's load. ``HWBENCH_PEER_BASELINE`` points at another
baseline folder (default: results/amd-epyc-zen4-2core/benchmarks).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

from hwbench.backends.base import default_threads
from hwbench.errors import BackendUnavailableError, UnsupportedError
from hwbench.harness.suites import model_suite
from hwbench.harness.suites.benchmarking import bench_model, model_reference
from hwbench.harness.suites.peer_benchmarks import bench_onnxruntime, interleaved_ratio
from hwbench.harness.suites.peers import OnnxRuntimePeer
from hwbench.models import Session

ort = pytest.importorskip("onnxruntime", reason="a peer (pip install 'hwbench[peers]')")

CASES = [model_suite.ModelCase("lenet", 8, "fp32"), model_suite.ModelCase("squeezenet", 1, "fp32"),
         model_suite.ModelCase("mobilenet_v2", 1, "fp32")]
ENGINES = ("cpu", "onnxruntime")
BASELINE = Path(os.environ.get("HWBENCH_PEER_BASELINE") or Path(__file__).resolve().parent.parent
                / "results" / "amd-epyc-zen4-2core" / "benchmarks")
RATIO_SLACK = 1.75  # as the CI pass's --fail-on median:75%


@functools.lru_cache(maxsize=8)
def _reference(case: model_suite.ModelCase):
    return model_reference(case)


def baseline_ratio(fullname: str, root: Path = BASELINE) -> float | None:
    """The ``ratio_vs_onnxruntime`` the newest committed baseline recorded for this
    benchmark; None where none did (a benchmark newer than the baseline)."""
    for path in sorted(root.glob("*/*.json"), key=lambda p: p.name, reverse=True):
        for bench in json.loads(path.read_text(encoding="utf-8")).get("benchmarks", []):
            if bench.get("fullname") == fullname:
                value = (bench.get("extra_info") or {}).get("ratio_vs_onnxruntime")
                if isinstance(value, (int, float)):
                    return float(value)
    return None


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_peer_ratio(benchmark, request, engine, case):
    benchmark.group = f"peers/{case.name}"
    threads = default_threads()
    try:
        if engine == "onnxruntime":
            info = bench_onnxruntime(benchmark, case, threads, _reference(case))
        else:
            info = bench_model(benchmark, engine, case, _reference(case))
    except (UnsupportedError, BackendUnavailableError) as exc:
        pytest.skip(f"{engine} cannot run {case.name}: {exc}")
    assert info["rel_error"] < 1e-3, info
    if engine != "cpu":
        return
    model = model_suite.load_case_model(case)
    feeds = model_suite.case_feeds(model, case)[0][0]
    ours = Session(model, backend="cpu")
    theirs = OnnxRuntimePeer(threads=threads).session(model)
    ours.run(feeds), theirs.run(feeds)
    ratio = interleaved_ratio(lambda: ours.run(feeds), lambda: theirs.run(feeds))
    benchmark.extra_info["ratio_vs_onnxruntime"] = ratio
    before = baseline_ratio(request.node.nodeid)
    if before is not None:
        assert ratio >= before / RATIO_SLACK, (
            f"{case.name}: hwbench cpu at {ratio:.2f}× onnxruntime, the baseline "
            f"{before:.2f}× (a fall beyond {RATIO_SLACK}×)")
