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
from hwbench.harness.suites import began_suite, translator_suite
from hwbench.harness.suites.kernel_suite import relative_error
from hwbench.harness.suites.peers import OnnxRuntimePeer, get_peer
from hwbench.harness.suites.timed_rows import (  # noqa: F401  (model_flops: re-exported)
    ModelWork,
    model_flops,
    model_work,
    timed_row,
    warmup_calls,
    work_row,
)
from hwbench.harness.suites.torch_graph import TorchModelPeer
from hwbench.models import Session, load_model, quantize_model
from hwbench.models import sample_inputs as model_inputs
from hwbench.models.digits import architecture
from hwbench.models.generated import GENERATED
from hwbench.models.session import session_backend
from hwbench.models.symbols import model_dims
from hwbench.models.zoo import ZOO

DIGITS_MODELS = ("mlp", "lenet", "autoencoder")
DEFAULT_MODELS = DIGITS_MODELS + ("alexnet", "resnet50", "vgg19", "squeezenet")
PRECISIONS = ("fp32", "int8")
# Task models run by their own loops, not as one graph: name -> suite module, each with
# ``reference_files(sizes, folder)`` and ``run_case(runner, case, reference_path)``.
TASK_SUITES = {translator_suite.NAME: translator_suite, began_suite.NAME: began_suite}
TASK_MODELS = tuple(TASK_SUITES)
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
        return list(DIGITS_MODELS) + list(TASK_MODELS) + list(ZOO) + list(GENERATED)
    if spec_text == "default":
        return list(DEFAULT_MODELS)
    names = [part.strip() for part in spec_text.split(",") if part.strip()]
    if not names:
        raise ArgumentError("argument 'model' names no model")
    for name in names:
        known = DIGITS_MODELS + TASK_MODELS + tuple(ZOO) + tuple(GENERATED)
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
    # Each model takes the --dim sizes of the symbols it has (model_dims refuses a name
    # that no model has) over its defaults; its rows record them.
    per_model = model_dims(models, dims or {})
    return [ModelCase(m, b, p, tuple(sorted(per_model[m].items()))) for m in models
            for p in precisions for b in sorted(batches)]


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
    if model.batch == case.batch:
        return model
    try:
        return model.with_batch(case.batch)
    except UnsupportedError:
        if case.model not in GENERATED:
            raise
        # a graph that folded its batch into constants (ViT-B/16's class token, expanded
        # then concatenated): the builder writes it at this batch, with the same weights
        return _suite_model(case.model, case.batch, case.dims)


def case_feeds(model, case: ModelCase) -> tuple[list[dict[str, np.ndarray]],
                                               np.ndarray | None, model_inputs.InputPlan]:
    """Feed dicts (one per batch) for every input, the labels, and how the inputs were
    drawn: the digits test split in full batches, or one batch of seeded samples for the
    other models (``model_inputs``: standard normal floats, token ids within the
    embedding table, ones for masks, zeros for token types); sample i is the same at every
    batch size (one seed per sample and input), so a smaller batch's reference is a prefix
    of a larger one's. A digits batch larger than the test split cycles through it (image
    i is test image i mod 360), so throughput can be measured at any batch while accuracy
    stays over the distinct images: the first ``_sample_count`` outputs."""
    name = model.inputs[0]
    if case.model in DIGITS_MODELS:
        plan = model_inputs.plan_inputs(model.graph)
        x, y = digits("test")
        if case.batch > len(x):
            return [{name: x[np.arange(case.batch) % len(x)]}], y, plan
        full = _sample_count(case.model, case.batch)
        batches = [{name: x[i:i + case.batch]} for i in range(0, full, case.batch)]
        return batches, y[:full], plan
    feeds, plan = model_inputs.batch_feeds(model.graph, case.batch, INPUT_SEED)
    return [feeds], None, plan


def case_inputs(model, case: ModelCase) -> tuple[list[np.ndarray], np.ndarray | None]:
    """``case_feeds``' batches of the first input only, and the labels."""
    batches, labels, _ = case_feeds(model, case)
    return [feeds[model.inputs[0]] for feeds in batches], labels


def run_outputs(session, outputs: list[str],
                batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Every output of ``session`` over ``batches``, each concatenated along the batch."""
    runs = [session.run(feeds) for feeds in batches]
    return {name: np.concatenate([run[k] for run in runs]) for k, name in enumerate(outputs)}


def load_reference(path: str) -> dict[str, np.ndarray]:
    """A reference file's outputs by name (``reference_outputs`` writes .npz)."""
    data = np.load(path, allow_pickle=False)
    if isinstance(data, np.ndarray):  # a single-array .npy from before
        return {"": data}
    with data:
        return {key: data[key] for key in data.files}


def _sample_count(model_name: str, batch: int) -> int:
    """How many distinct samples ``case_inputs`` feeds at this batch size: the outputs
    that accuracy is measured over."""
    if model_name in DIGITS_MODELS:
        images = len(digits("test")[0])
        return images if batch > images else images // batch * batch
    return batch


def reference_outputs(case: ModelCase, folder: str,
                      batches: list[int] | None = None) -> dict[int, str]:
    """Run the case in float64 on ``ReferenceBackend`` and save every output (.npz, by
    output name; ``load_reference`` reads it back); with
    ``batches``, run once at the largest and save each smaller batch's prefix too (their
    inputs are prefixes: ``case_inputs``). Returns batch size -> path."""
    sizes = sorted(set(batches or []) | {case.batch})
    if case.model in TASK_SUITES:  # the task's own float64 run (decoding, images)
        return TASK_SUITES[case.model].reference_files(sizes, folder)
    largest = dataclasses.replace(case, batch=sizes[-1])
    model = load_case_model(largest)
    session = Session(model, backend=ReferenceBackend())  # first: it refuses a batch too big
    inputs, _, _ = case_feeds(model, largest)
    outputs = run_outputs(session, model.outputs, inputs)
    paths = {}
    for size in sizes:
        count = _sample_count(case.model, size)
        path = Path(folder) / f"{case.model.replace('/', '_')}-b{size}.npz"
        with open(path, "wb") as f:  # every output, by name
            np.savez(f, **{name: out[:count] for name, out in outputs.items()})
        paths[size] = str(path)
    return paths


def accuracy(outputs: np.ndarray, reference: np.ndarray | None, labels: np.ndarray | None,
             task: str = "classify", name: str = "") -> dict[str, Any]:
    """Agreement with the float64 reference (max relative error; top-1 agreement for
    classifiers) and, with labels, top-1 (classify) or reconstruction MSE (reconstruct).
    Classifier scores are (N, C) (not an output ``name`` says holds features: hidden
    states, pooler output, embeddings) or per-position logits (N, S, V) of an output
    named logits, whose top-1 agreement is over every position (argmax over V)."""
    out: dict[str, Any] = {}
    if outputs.ndim > 2 and all(d == 1 for d in outputs.shape[2:]):  # (N, C, 1, 1) logits
        outputs = outputs.reshape(outputs.shape[:2])                  # (SqueezeNet, DenseNet)
        if reference is not None:
            reference = reference.reshape(reference.shape[:2])
    lower = name.lower()
    features = any(word in lower for word in FEATURE_OUTPUTS)
    per_position = outputs.ndim == 3 and "logit" in lower
    classifier = (task == "classify" and outputs.shape[-1] > 1 and not features
                  and (outputs.ndim == 2 or per_position))
    if reference is not None:
        out["rel_error"] = relative_error(outputs, reference)
        if classifier:
            out["top1_agreement"] = float(np.mean(outputs.argmax(-1) == reference.argmax(-1)))
    if labels is not None and classifier and outputs.ndim == 2:
        out["top1"] = float(np.mean(outputs.argmax(1) == labels))
    if labels is not None and task == "reconstruct":
        x = digits("test")[0][:len(outputs)].reshape(len(outputs), -1)
        out["mse"] = float(np.mean((outputs - x) ** 2))
    return out


FEATURE_OUTPUTS = ("hidden", "pooler", "embedding", "state")


def accuracy_all(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None,
                 labels: np.ndarray | None, task: str = "classify") -> dict[str, Any]:
    """``accuracy`` over every output: one output's figures as they are; with several,
    rel_error the worst (per output in ``rel_error_by_output``) and top-1 agreement the
    lowest of the outputs that have one (per output too). Labels score the first output."""
    names = list(outputs)
    if reference is not None and list(reference) == [""]:  # a single-array file
        reference = {names[0]: reference[""]}
    per = {name: accuracy(outputs[name], None if reference is None else reference[name],
                          labels if k == 0 else None, task, name)
           for k, name in enumerate(names)}
    if len(names) == 1:
        return per[names[0]]
    out = {key: value for key, value in per[names[0]].items()
           if key not in ("rel_error", "top1_agreement")}
    for key in ("rel_error", "top1_agreement"):
        by_output = {name: a[key] for name, a in per.items() if key in a}
        if by_output:
            out[key] = (max if key == "rel_error" else min)(by_output.values())
            out[f"{key}_by_output"] = by_output
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
        self.devices: list[str] = []  # what the current case's sessions record as device
        if job.get("peer") and job["backend"] == "onnxruntime":
            self.backend = OnnxRuntimePeer(threads=self.threads)
        elif job.get("peer") and job["backend"] == "torch":  # the graph converted to torch
            self.backend = TorchModelPeer(threads=self.threads)
        elif job.get("peer"):
            self.backend = get_peer(job["backend"], threads=self.threads, check_finite=False)
        else:
            self.backend = session_backend(job["backend"], **job["options"])

    def info(self) -> dict[str, Any]:
        return self.backend.info()

    def session(self, model, case: ModelCase, calibration: Any = None):
        """An engine's session of ``model`` at the case's precision; ``calibration``:
        int8 calibration inputs (``quantize_model``'s), its default where None."""
        int8 = case.precision == "int8"
        if self.job.get("peer") and self.job["backend"] == "onnxruntime":
            if int8:  # the same quantized ONNX graph hwbench runs
                return self.backend.session(quantize_model(model, calibration))
            return self.backend.session(model)
        if self.job.get("peer") and self.job["backend"] == "torch":
            return self.backend.session(model, case.precision)
        session = Session(model, backend=self.backend, precision=case.precision,
                          calibration=calibration if int8 else None)
        if session.device and session.device not in self.devices:  # plain opencl's choice
            self.devices.append(session.device)
        return session

    def run(self, case: ModelCase, reference_path: str | None) -> dict[str, Any]:
        self.devices.clear()
        row = self._run(case, reference_path)
        if self.devices:  # the device each of the case's sessions chose (see Session)
            row["device"] = "; ".join(self.devices)
        return row

    def _run(self, case: ModelCase, reference_path: str | None) -> dict[str, Any]:
        row: dict[str, Any] = {"model": case.model, "batch": case.batch,
                               "precision": case.precision}
        if case.model in TASK_SUITES:  # a decoding loop, a generator scored by FID
            try:
                return {**row, **TASK_SUITES[case.model].run_case(self, case, reference_path)}
            except UnsupportedError as exc:
                return {**row, "status": "unsupported", "reason": str(exc), "refused": True}
        try:
            model = load_case_model(case)
            session = self.session(model, case)  # first: it refuses a batch that cannot fit
            batches, labels, plan = case_feeds(model, case)
        except UnsupportedError as exc:
            return {**row, "status": "unsupported", "reason": str(exc), "refused": True}
        start = time.perf_counter()
        outputs = run_outputs(session, model.outputs, batches)
        row["accuracy_seconds"] = time.perf_counter() - start
        row["accuracy_samples"] = distinct = _sample_count(case.model, case.batch)
        first = outputs[model.outputs[0]]
        if len(first) > distinct:  # a batch that cycles through the test split
            row["inputs_cycled"] = True
            outputs = {name: out[:distinct] for name, out in outputs.items()}
        reference = load_reference(reference_path) if reference_path else None
        row.update(plan.describe())
        row.update(accuracy_all(outputs, reference, labels, task_of(case.model)))
        feeds = batches[0]
        warmup = warmup_calls(row["accuracy_seconds"], len(batches))
        row.update(timed_row(self, lambda: session.run(feeds), case.batch, warmup))
        row.update(_tokens(plan, case.batch, row["seconds"]))
        # bytes and intensity place the row on the roofline (int8: the quantized graph)
        work = model_work(getattr(session, "model", model))
        row.update(work_row(work.flops, work.bytes, row["seconds"]))
        return row


def _tokens(plan: model_inputs.InputPlan, batch: int, seconds: float) -> dict[str, Any]:
    """A sequence model's (token ids of shape [B, S]) length and tokens per second."""
    if plan.sequence is None:
        return {}
    return {"sequence": plan.sequence, "tokens_per_s": batch * plan.sequence / seconds}


def make_runner(job: dict[str, Any]) -> Runner:
    return Runner(job)


def reference_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="hwbench-reference-")
