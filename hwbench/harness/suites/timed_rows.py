"""What every ``hwbench run`` row measures the same way, whatever the model: the timed
calls (median, latency percentiles at batch 1, the machine's state while timing) and the
work one inference does (FLOPs, bytes moved, where it sits on the roofline).

One home for the graph models (``model_suite``) and the task models run by their own
loops (``translator_suite``: a decoding loop over two graphs; ``began_suite``: the
generator scored by an FID), so their rows read alike and are timed alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hwbench.graph.passes import optimize
from hwbench.graph.shape_inference import infer_shapes
from hwbench.graph.statistics import graph_bytes, graph_flops
from hwbench.harness.running.machine_state import Monitor
from hwbench.harness.running.timing import measure
from hwbench.harness.suites.kernel_suite import row_flags, row_machine_state
from hwbench.harness.suites.simulate import simulated_row


@dataclass(frozen=True)
class ModelWork:
    """What one inference costs: FLOPs (``graph_flops``) and bytes moved (``graph_bytes``)."""

    flops: int
    bytes: int

    @property
    def intensity(self) -> float:
        """Arithmetic intensity in FLOP/byte: where the model sits on a roofline."""
        return self.flops / self.bytes if self.bytes else 0.0


def model_work(model: Any) -> ModelWork:
    """FLOPs and bytes of one inference of ``model`` as hwbench runs it (after the passes)."""
    graph = optimize(model.graph)
    shapes = infer_shapes(graph)
    return ModelWork(graph_flops(graph, shapes), graph_bytes(graph, shapes))


def model_flops(model: Any) -> int:
    """FLOPs of one inference of ``model`` as hwbench runs it (after the graph passes)."""
    return model_work(model).flops


def warmup_calls(accuracy_seconds: float, calls: int) -> int:
    """Warm-up calls before timing: the accuracy pass has run the session already
    (weights uploaded, primitives built), so one more, none where a call takes over 1 s."""
    return 0 if accuracy_seconds / max(calls, 1) > 1.0 else 1


def timed_row(runner: Any, call: Callable[[], Any], batch: int,
              warmup: int) -> dict[str, Any]:
    """Time ``call`` (one batch) with the runner's settings: the row's ``status``,
    ``timing``, ``seconds`` (median), ``samples_per_s``, machine state and flags, at
    batch 1 the latency percentiles (MLPerf SingleStream), and on a simulated
    accelerator its own time for one call (``simulated_row``; that call warms up too)."""
    row: dict[str, Any] = {}
    backend = runner.backend
    if hasattr(backend, "simulated_counters"):
        backend.reset_counters()
        call()
        row.update(simulated_row(backend.simulated_counters(), batch))
        warmup = 0
    with Monitor() as monitor:
        timing = measure(call, backend.synchronize, batch_calls=False,
                         warmup=warmup, **runner.timing)
    row.update({
        "status": "ok", "timing": timing.to_dict(), "seconds": timing.median,
        "samples_per_s": batch / timing.median,
        "machine_state": row_machine_state(monitor.state),
        "flags": row_flags(timing.flags, monitor.state)})
    if batch == 1:
        row.update(latency_p50=timing.percentile(50), latency_p90=timing.percentile(90),
                   latency_p99=timing.percentile(99))
    return row


def work_row(flops: int, moved: int, seconds: float) -> dict[str, Any]:
    """``flops``, ``gflops`` at ``seconds`` per call, ``bytes`` and ``intensity``: the
    row's place on the roofline (int8: the quantized graph's)."""
    return {"flops": flops, "gflops": flops / seconds / 1e9, "bytes": moved,
            "intensity": flops / moved if moved else 0.0}
