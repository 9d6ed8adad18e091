"""The model suite behind ``hwbench run``: models × batch sizes × precisions, per backend.

Per case a worker (one per backend, see ``isolation``) builds a ``Session`` and reports:
at batch 1 the latency distribution of single queries (MLPerf SingleStream: p50/p90/p99),
at any batch the throughput (samples/s, MLPerf Offline's figure) and GFLOP/s, and the
accuracy: top-1 on the digits test split for the digits models, and for every model the
agreement with the float64 reference (the same graph run by ``ReferenceBackend``, computed
once per case in the parent and handed to the workers as a file).

The ImageNet architectures ship with constant weights (all 0.02), whose outputs are a
uniform softmax: accuracy against the reference would say nothing, so the suite runs
them with seeded random weights (``Model.randomized``), the same in every process.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.backends.reference import ReferenceBackend
from hwbench.datasets import digits
from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.passes import optimize
from hwbench.graph.shape_inference import infer_shapes
from hwbench.graph.statistics import graph_bytes, graph_flops
from hwbench.harness.running.machine_state import Monitor
from hwbench.harness.running.timing import measure
from hwbench.harness.suites.kernel_suite import relative_error, row_flags, row_machine_state
from hwbench.harness.suites.peers import OnnxRuntimePeer, get_peer
from hwbench.harness.suites.simulate import simulated_row
from hwbench.models import Session, load_model, quantize_model
from hwbench.models.digits import architecture
from hwbench.models.generated import GENERATED
from hwbench.models.session import session_backend
from hwbench.models.zoo import ZOO

DIGITS_MODELS = ("mlp", "lenet", "autoencoder")
DEFAULT_MODELS = DIGITS_MODELS + ("alexnet", "resnet50", "vgg19", "squeezenet")
PRECISIONS = ("fp32", "int8")
WEIGHT_SEED = 0
INPUT_SEED = 1


@dataclass(frozen=True)
class ModelCase:
    model: str
    batch: int
    precision: str
    dims: tuple[tuple[str, int], ...] = ()  # sizes of a model file's symbolic dimensions

    @property
    def name(self) -> str:
        return f"{self.model}/b{self.batch}/{self.precision}"


def expand_models(spec_text: str) -> list[str]:
    """``"all"`` -> every zoo model; ``"default"`` -> the README's set; else a comma list
    of zoo names or .onnx paths."""
    if spec_text == "all":
        return list(DIGITS_MODELS) + list(ZOO) + list(GENERATED)
    if spec_text == "default":
        return list(DEFAULT_MODELS)
    names = [part.strip() for part in spec_text.split(",") if part.strip()]
    if not names:
        raise ArgumentError("argument 'model' names no model")
    for name in names:
        known = DIGITS_MODELS + tuple(ZOO) + tuple(GENERATED)
        if name not in known and not Path(name).is_file():
            raise ArgumentError(f"argument 'model': {name!r} is neither a zoo model "
                                f"({', '.join(known)}) nor a file")
    return names


def plan(models: list[str], batches: list[int], precisions: list[str],
         dims: dict[str, int] | None = None) -> list[ModelCase]:
    for precision in precisions:
        if precision not in PRECISIONS:
            raise ArgumentError(f"argument 'precision': {precision!r}; known: {PRECISIONS}")
    if not precisions:
        raise ArgumentError("argument 'precision' names no precision")
    if not batches or min(batches) < 1:
        raise ArgumentError(f"argument 'batch' must be positive integers, got {batches}")
    fixed = tuple(sorted((dims or {}).items()))
    return [ModelCase(m, b, p, fixed) for m in models for p in precisions
            for b in sorted(batches)]


@functools.lru_cache(maxsize=2)
def _suite_model(name: str, batch: int | None, dims: tuple[tuple[str, int], ...]):
    """A model with the suite's weights, loaded once per worker for all its batch sizes
    (the seeded random weights do not depend on the batch); a user's .onnx file loads at
    each case's batch, since its batch dimension may be symbolic (exported dynamic)."""
    model = load_model(name, batch=batch, dims=dict(dims) or None)
    # The digits models keep their trained weights, the generated ones their seeded ones.
    keep = name in DIGITS_MODELS or name in GENERATED
    return model if keep else model.randomized(WEIGHT_SEED)


def load_case_model(case: ModelCase):
    """The case's model at its batch size, with the suite's weights (see the docstring)."""
    shipped = case.model in DIGITS_MODELS or case.model in ZOO or case.model in GENERATED
    model = _suite_model(case.model, None if shipped else case.batch, case.dims)
    return model if model.batch == case.batch else model.with_batch(case.batch)


def case_inputs(model, case: ModelCase) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Input batches (and labels): the digits test split in full batches, or one batch of
    seeded standard-normal samples for the other models; sample i is the same at every
    batch size (one seed per sample), so a smaller batch's reference is a prefix of a
    larger one's. A digits batch larger than the test split cycles through it (image i
    is test image i mod 360), so throughput can be measured at any batch while accuracy
    stays over the distinct images: the first ``_sample_count`` outputs."""
    if case.model in DIGITS_MODELS:
        x, y = digits("test")
        if case.batch > len(x):
            return [x[np.arange(case.batch) % len(x)]], y
        full = _sample_count(case.model, case.batch)
        batches = [x[i:i + case.batch] for i in range(0, full, case.batch)]
        return batches, y[:full]
    shape = model.input_shapes[model.inputs[0]]
    samples = [np.random.default_rng([INPUT_SEED, i]).standard_normal(shape[1:],
                                                                      dtype=np.float32)
               for i in range(case.batch)]
    return [np.stack(samples)], None


def _sample_count(model_name: str, batch: int) -> int:
    """How many distinct samples ``case_inputs`` feeds at this batch size: the outputs
    that accuracy is measured over."""
    if model_name in DIGITS_MODELS:
        images = len(digits("test")[0])
        return images if batch > images else images // batch * batch
    return batch


def reference_outputs(case: ModelCase, folder: str,
                      batches: list[int] | None = None) -> dict[int, str]:
    """Run the case in float64 on ``ReferenceBackend`` and save the outputs; with
    ``batches``, run once at the largest and save each smaller batch's prefix too (their
    inputs are prefixes: ``case_inputs``). Returns batch size -> path."""
    sizes = sorted(set(batches or []) | {case.batch})
    largest = dataclasses.replace(case, batch=sizes[-1])
    model = load_case_model(largest)
    session = Session(model, backend=ReferenceBackend())  # first: it refuses a batch too big
    inputs, _ = case_inputs(model, largest)
    outputs = np.concatenate([session.run({model.inputs[0]: x})[0] for x in inputs])
    paths = {}
    for size in sizes:
        count = _sample_count(case.model, size)
        path = Path(folder) / f"{case.model.replace('/', '_')}-b{size}.npy"
        np.save(path, outputs[:count], allow_pickle=False)
        paths[size] = str(path)
    return paths


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


def accuracy(outputs: np.ndarray, reference: np.ndarray | None, labels: np.ndarray | None,
             task: str = "classify") -> dict[str, Any]:
    """Agreement with the float64 reference (max relative error; top-1 agreement for
    classifiers) and, with labels, top-1 (classify) or reconstruction MSE (reconstruct)."""
    out: dict[str, Any] = {}
    if outputs.ndim > 2 and all(d == 1 for d in outputs.shape[2:]):  # (N, C, 1, 1) logits
        outputs = outputs.reshape(outputs.shape[:2])                  # (SqueezeNet, DenseNet)
        if reference is not None:
            reference = reference.reshape(reference.shape[:2])
    classifier = task == "classify" and outputs.ndim == 2 and outputs.shape[1] > 1
    if reference is not None:
        out["rel_error"] = relative_error(outputs, reference)
        if classifier:
            out["top1_agreement"] = float(np.mean(outputs.argmax(1) == reference.argmax(1)))
    if labels is not None and classifier:
        out["top1"] = float(np.mean(outputs.argmax(1) == labels))
    if labels is not None and task == "reconstruct":
        x = digits("test")[0][:len(outputs)].reshape(len(outputs), -1)
        out["mse"] = float(np.mean((outputs - x) ** 2))
    return out


def task_of(model_name: str) -> str:
    if model_name in DIGITS_MODELS:
        return architecture(model_name).task
    return "classify"


class Runner:
    """One backend (or peer) in a worker: builds sessions and measures cases."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.timing = job["timing"]
        self.threads = job["options"]["threads"]
        if job.get("peer") and job["backend"] == "onnxruntime":
            self.backend = OnnxRuntimePeer(threads=self.threads)
        elif job.get("peer"):  # torch: PyTorch eager, op by op through hwbench's executor
            self.backend = get_peer(job["backend"], threads=self.threads, check_finite=False)
        else:
            self.backend = session_backend(job["backend"], **job["options"])

    def info(self) -> dict[str, Any]:
        return self.backend.info()

    def session(self, model, case: ModelCase):
        if self.job.get("peer") and self.job["backend"] == "onnxruntime":
            if case.precision == "int8":  # the same quantized ONNX graph hwbench runs
                return self.backend.session(quantize_model(model))
            return self.backend.session(model)
        return Session(model, backend=self.backend, precision=case.precision)

    def run(self, case: ModelCase, reference_path: str | None) -> dict[str, Any]:
        row: dict[str, Any] = {"model": case.model, "batch": case.batch,
                               "precision": case.precision}
        try:
            model = load_case_model(case)
            session = self.session(model, case)  # first: it refuses a batch that cannot fit
            batches, labels = case_inputs(model, case)
        except UnsupportedError as exc:
            return {**row, "status": "unsupported", "reason": str(exc), "refused": True}
        name = model.inputs[0]
        start = time.perf_counter()
        outputs = np.concatenate([session.run({name: x})[0] for x in batches])
        row["accuracy_seconds"] = time.perf_counter() - start
        row["accuracy_samples"] = distinct = _sample_count(case.model, case.batch)
        if len(outputs) > distinct:  # a batch that cycles through the test split
            row["inputs_cycled"] = True
            outputs = outputs[:distinct]
        reference = np.load(reference_path, allow_pickle=False) if reference_path else None
        row.update(accuracy(outputs, reference, labels, task_of(case.model)))
        feeds = {name: batches[0]}
        # The accuracy pass has run the session already (weights uploaded and reordered,
        # primitives built): one more warm-up call, none where a call takes over a second.
        warmup = 0 if row["accuracy_seconds"] / len(batches) > 1.0 else 1
        if hasattr(self.backend, "simulated_counters"):  # a simulated accelerator's own time
            self.backend.reset_counters()
            session.run(feeds)  # counted, and a warm-up too
            row.update(simulated_row(self.backend.simulated_counters(), case.batch))
            warmup = 0
        with Monitor() as monitor:
            timing = measure(lambda: session.run(feeds), self.backend.synchronize,
                             batch_calls=False, warmup=warmup, **self.timing)
        row.update(status="ok", timing=timing.to_dict(), seconds=timing.median,
                   samples_per_s=case.batch / timing.median,
                   machine_state=row_machine_state(monitor.state),
                   flags=row_flags(timing.flags, monitor.state))
        if case.batch == 1:
            row.update(latency_p50=timing.percentile(50), latency_p90=timing.percentile(90),
                       latency_p99=timing.percentile(99))
        # bytes and intensity place the row on the roofline (int8: the quantized graph)
        work = model_work(getattr(session, "model", model))
        row.update(flops=work.flops, gflops=work.flops / timing.median / 1e9,
                   bytes=work.bytes, intensity=work.intensity)
        return row


def make_runner(job: dict[str, Any]) -> Runner:
    return Runner(job)


def reference_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="hwbench-reference-")
