"""``hwbench run --model began``: the BEGAN generator as ONNX, scored by an FID for 8×8 digits.

The model is the shipped generator exported as standard ONNX (``began.to_onnx``: Gemm,
Reshape, Conv, Elu, Resize, Clip), run by each engine — a backend's ``Session``,
onnxruntime, PyTorch, int8 — through the model suite's ``Runner.session``. Each row
generates ``IMAGES`` images from the same seeded ``z`` as ``began.sample`` (so the
``numpy`` row's FID is the one ``hwbench train`` recorded) and reports:

- ``samples_per_s``: generated images per second at the case's batch (one ``z`` batch);
- ``fid`` against the digits test split and LeNet's class spread over the images
  (``classes_made``: digits with ≥ 5 % of the images, ``class_entropy_bits``), from
  ``models.frechet``. The LeNet features are always computed on ``numpy`` in float32,
  whatever engine generated the images, so a difference between rows is the generator's;
- agreement with the float64 run of the same graph (``ReferenceBackend``, computed once in
  the parent): ``rel_error`` and ``max_abs_diff`` of the images (pixels in [0, 1]), the
  float64 images' FID (``fid_fp64``) and the row's difference from it (``fid_vs_fp64``).

int8 calibrates on uniform ``z`` (the generator's input distribution) from its own seed,
not on the standard-normal samples ``quantize_model`` draws for an unknown float input.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.backends import get_backend
from hwbench.backends.reference import ReferenceBackend
from hwbench.graph.onnx_import import load_onnx
from hwbench.graph.passes import fold_constants, set_output_shapes
from hwbench.harness.suites.kernel_suite import relative_error
from hwbench.harness.suites.timed_rows import model_work, timed_row, warmup_calls, work_row
from hwbench.models import began, frechet
from hwbench.models.model import Model
from hwbench.models.quantization import CALIBRATION_SEED
from hwbench.models.session import Session

NAME = "began"
IMAGES = 1000            # images scored per row: began.sample's default, as hwbench train
SEED = 1234              # z's seed: began.sample's
CALIBRATION_IMAGES = 256  # int8 calibration: uniform z from CALIBRATION_SEED


def latents(n: int, hidden: int, seed: int = SEED) -> np.ndarray:
    """``n`` z vectors uniform in [-1, 1], as ``began.sample`` draws them: row i is the
    same for any ``n``, so a smaller count's images are a prefix of a larger one's."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, hidden)).astype(np.float32)


def image_count(batch: int) -> int:
    """Images generated for the accuracy pass: ``IMAGES`` rounded up to whole batches
    (only the first ``IMAGES`` are scored)."""
    return math.ceil(IMAGES / batch) * batch


def case_model(batch: int) -> Model:
    """The shipped generator's ONNX graph at ``batch``."""
    gen, _ = began.load()
    graph = load_onnx(began.to_onnx(gen, batch=batch), batch=batch)
    return Model(f"{NAME}/generator", set_output_shapes(fold_constants(graph)))


def _hidden(model: Model) -> int:
    return int(model.input_shapes["z"][1])


def calibration(model: Model) -> np.ndarray:
    """int8 calibration inputs: ``CALIBRATION_IMAGES`` uniform z (see the module doc)."""
    return latents(CALIBRATION_IMAGES, _hidden(model), CALIBRATION_SEED)


def generate(run: Any, model: Model, batch: int) -> np.ndarray:
    """``image_count(batch)`` images from ``run`` (feeds -> [images]), one batch a call."""
    z = latents(image_count(batch), _hidden(model))
    return np.concatenate([np.asarray(run({"z": z[i:i + batch]})[0])
                           for i in range(0, len(z), batch)])


def metrics(images: np.ndarray) -> dict[str, Any]:
    """FID against the test split and LeNet's class spread of the first ``IMAGES``
    images, with LeNet on ``numpy`` in float32 whatever generated them."""
    return frechet.generator_metrics(get_backend("numpy"), np.asarray(images[:IMAGES]))


def reference_files(sizes: list[int], folder: str) -> dict[int, str]:
    """Batch size -> a .npz of the float64 images (``IMAGES`` of them, the same for
    every batch: one run) and their ``fid``."""
    model = case_model(max(sizes))
    reference = Session(model, backend=ReferenceBackend())
    images = generate(reference.run, model, model.batch)[:IMAGES]
    path = Path(folder) / f"{NAME}-fp64.npz"
    with open(path, "wb") as f:
        np.savez(f, images=images, fid=np.float64(metrics(images)["fid"]))
    return {size: str(path) for size in sizes}


def run_case(runner: Any, case: Any, reference_path: str | None) -> dict[str, Any]:
    """One row: generate and score the images, then time one batch's generation.
    ``runner`` is the model suite's ``Runner`` (``session``, ``timing``)."""
    model = case_model(case.batch)
    session = runner.session(model, case, calibration=calibration(model))
    row: dict[str, Any] = {}
    start = time.perf_counter()
    images = generate(session.run, model, case.batch)
    row["accuracy_seconds"] = time.perf_counter() - start
    row["accuracy_samples"] = IMAGES
    row.update(metrics(images))
    if reference_path:
        with np.load(reference_path, allow_pickle=False) as data:
            expected, fid_fp64 = data["images"], float(data["fid"])
        row.update(rel_error=relative_error(images[:IMAGES], expected),
                   max_abs_diff=float(np.max(np.abs(images[:IMAGES] - expected))),
                   fid_fp64=fid_fp64, fid_vs_fp64=row["fid"] - fid_fp64)
    feeds = {"z": latents(case.batch, _hidden(model))}
    warmup = warmup_calls(row["accuracy_seconds"], image_count(case.batch) // case.batch)
    row.update(timed_row(runner, lambda: session.run(feeds), case.batch, warmup))
    work = model_work(getattr(session, "model", model))
    row.update(work_row(work.flops, work.bytes, row["seconds"]))
    return row
