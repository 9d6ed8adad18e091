"""Plain ``opencl``'s per-Session device choice on PoCL, measured: the break-even behind
``hwbench/backends/opencl/device_choice.py`` and opencl ÷ cpu before and after it.

For each ``model@batch`` (zoo names, ``began``, ``translator``: its whole decoding of one
batch) four engines run in this process, taking turns (a busy machine's load swings reach
all alike): ``opencl:pthread`` (one device: what plain ``opencl`` ran before the choice),
``opencl`` (the choice), ``opencl:basic`` and ``cpu``; each round in a new order (PoCL's
pthread workers spin on for a while after a run, slowing whatever runs right after it in
this process, so that no engine always follows it). Printed per case: the cost model's
estimates, what ``opencl`` chose, the median seconds of each, and speed ÷ cpu; then the
geometric means of opencl ÷ cpu before (pthread) and after (the choice).

    python scripts/opencl_device_choice.py --cases mlp@1,mlp@8,squeezenet@1 --reps 20
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.opencl import device_choice
from hwbench.graph.shape_inference import infer_shapes
from hwbench.graph.statistics import graph_bytes, graph_flops
from hwbench.harness.suites import began_suite, translator_suite
from hwbench.harness.suites.model_suite import ModelCase, case_feeds, load_case_model
from hwbench.models.session import Session
from hwbench.models.translator import export as translator_export

ENGINES = (("opencl:pthread", "opencl", {"device_choice": False}), ("opencl", "opencl", {}),
           ("opencl:basic", "opencl:basic", {}), ("cpu", "cpu", {}))
SMALL = ("mlp@1,mlp@8,autoencoder@1,autoencoder@8,lenet@1,lenet@8,began@1,began@8,"
         "translator@1,translator@8,squeezenet@1,squeezenet@8")


def work(graph: Any) -> device_choice.GraphWork:
    """What the Session weighed for its choice (``Session.__init__``)."""
    shapes = infer_shapes(graph)
    return device_choice.GraphWork(graph_flops(graph, shapes), graph_bytes(graph, shapes),
                                   len(graph.nodes))


def runner(model_name: str, batch: int, backend: str, options: dict[str, Any]
           ) -> tuple[Callable[[], Any], list[Session]]:
    """One run of the case on ``backend`` (a call) and the sessions it uses."""
    if model_name == "translator":
        encoder_model, step_model = translator_suite.case_models(batch)
        encoder, step = (Session(m, backend, **options) for m in (encoder_model, step_model))
        sources, _ = translator_suite._sentences(batch)
        feeds = translator_export.source_feeds(sources[:batch], translator_suite.SEQUENCE)
        return (lambda: translator_export.decode(encoder.run, step.run, feeds)), [encoder, step]
    if model_name == "began":
        model = began_suite.case_model(batch)
        feeds = {"z": began_suite.latents(batch, began_suite._hidden(model))}
    else:
        model = load_case_model(ModelCase(model_name, batch, "fp32"))
        feeds = case_feeds(model, ModelCase(model_name, batch, "fp32"))[0][0]
    session = Session(model, backend, **options)
    return (lambda: session.run(feeds)), [session]


def measure(case: str, reps: int) -> dict[str, float]:
    """Median seconds per engine for ``case`` ("model@batch"), printed with the choice."""
    name, _, batch_text = case.partition("@")
    batch = int(batch_text or 1)
    calls, chosen = [], ""
    for label, backend, options in ENGINES:
        call, sessions = runner(name, batch, backend, options)
        if label == "opencl":
            works = [work(s.graph) for s in sessions]
            chosen = "; ".join(
                f"{w.flops / 1e6:.1f} MFLOP {w.bytes / 1e6:.1f} MB {w.launches} launches: "
                f"est basic {w.basic_seconds * 1e6:.0f} us, pthread "
                f"{w.pthread_seconds(s.backend.dev.compute_units) * 1e6:.0f} us -> "
                f"{(s.device or '?').split('-')[0]}" for w, s in zip(works, sessions, strict=True))
        for _ in range(2):
            call()
        calls.append(call)
    times: list[list[float]] = [[] for _ in calls]
    order = np.random.default_rng(0)
    for _ in range(reps):  # in a new order each round: whatever runs right after
        for k in order.permutation(len(calls)):  # pthread (its workers spin on) varies
            start = time.perf_counter()
            calls[k]()
            times[k].append(time.perf_counter() - start)
    med = {label: float(np.median(t)) for (label, _, _), t in zip(ENGINES, times, strict=True)}
    print(f"{case}: {chosen}", flush=True)
    print("    " + ", ".join(f"{k} {v * 1e6:.0f} us ({med['cpu'] / v:.3f}x cpu)"
                             for k, v in med.items()), flush=True)
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=SMALL, help="comma list of model@batch")
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    logs: dict[str, list[float]] = {"opencl:pthread": [], "opencl": [], "opencl:basic": []}
    for case in args.cases.split(","):
        med = measure(case, args.reps)
        for key, values in logs.items():
            values.append(math.log(med["cpu"] / med[key]))
    for key, values in logs.items():
        print(f"geomean {key} / cpu: {math.exp(sum(values) / len(values)):.3f} "
              f"over {len(values)} cases")


if __name__ == "__main__":
    main()
