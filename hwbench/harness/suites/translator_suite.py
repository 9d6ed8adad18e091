"""``hwbench run --model translator``: the dates translator as a decoding loop.

The model is two exported ONNX graphs (``models.translator.export``): the encoder, run
once per batch of sentences, and one decoder step, run once per generated character
(``TARGET_LENGTH`` steps). Each engine — a backend's ``Session``, onnxruntime, int8 — runs
both graphs through the model suite's ``Runner.session``, and the host loop
``export.decode`` feeds each step its own best guess, as a deployed translator would.

A row reports the time to translate one batch (``seconds``), sentences/s
(``samples_per_s``), tokens/s and seconds per generated token (``latency_per_token``),
exact match and character error rate on ``ACCURACY_SENTENCES`` test sentences, and
``top1_agreement``: the share of generated characters equal to the float64 decoding's
(``reference_ids``, computed once in the parent).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.datasets import dates
from hwbench.graph.onnx_import import load_onnx
from hwbench.graph.passes import fold_constants, set_output_shapes
from hwbench.harness.suites.timed_rows import model_work, timed_row, warmup_calls, work_row
from hwbench.models.model import Model
from hwbench.models.translator import Float64Ops, load_params
from hwbench.models.translator import export as translator_export
from hwbench.models.translator.model import translate_ids
from hwbench.models.translator.training import score

NAME = "translator"
ACCURACY_SENTENCES = 200  # test sentences scored per row (2,000 in hwbench train)
SEQUENCE = 32             # sentences padded to this many characters (the longest has 29)


def sentence_count(batch: int) -> int:
    """Test sentences decoded for accuracy: ``ACCURACY_SENTENCES`` rounded up to whole
    batches (a batch larger than the test split cycles through it)."""
    return math.ceil(ACCURACY_SENTENCES / batch) * batch


def _sentences(batch: int) -> tuple[list[str], list[str]]:
    sources, targets = dates.sentences("test")
    index = np.arange(sentence_count(batch)) % len(sources)
    return [sources[i] for i in index], [targets[i] for i in index]


def case_models(batch: int) -> tuple[Model, Model]:
    """The encoder and decoder-step graphs of the shipped weights at ``batch``."""
    params = load_params()
    models = []
    for proto in (translator_export.encoder_onnx(params),
                  translator_export.decoder_step_onnx(params)):
        graph = load_onnx(proto, batch=batch, dims={"sequence": SEQUENCE})
        models.append(Model(f"{NAME}/{proto.graph.name}",
                            set_output_shapes(fold_constants(graph))))
    return models[0], models[1]


def reference_ids(batch: int, folder: str) -> str:
    """The float64 decoding of the accuracy sentences, saved as .npz; returns its path."""
    sources, _ = _sentences(batch)
    feeds = translator_export.source_feeds(sources, SEQUENCE)
    ids = translate_ids(Float64Ops(), load_params(), feeds["source"],
                        feeds["lengths"].astype(np.int64), dates.TARGET_LENGTH)
    path = Path(folder) / f"{NAME}-b{batch}.npz"
    with open(path, "wb") as f:
        np.savez(f, ids=ids)
    return str(path)


def reference_files(sizes: list[int], folder: str) -> dict[int, str]:
    """Batch size -> the float64 decoding's file (``reference_ids``)."""
    return {size: reference_ids(size, folder) for size in sizes}


def run_case(runner: Any, case: Any, reference_path: str | None) -> dict[str, Any]:
    """One row: decode the accuracy sentences, then time the translation of one batch.
    ``runner`` is the model suite's ``Runner`` (``session`` per graph, ``timing``)."""
    encoder_model, step_model = case_models(case.batch)
    encoder = runner.session(encoder_model, case)
    step = runner.session(step_model, case)
    sources, targets = _sentences(case.batch)
    batches = [translator_export.source_feeds(sources[i:i + case.batch], SEQUENCE)
               for i in range(0, len(sources), case.batch)]
    row: dict[str, Any] = {}
    start = time.perf_counter()
    ids = np.concatenate([translator_export.decode(encoder.run, step.run, feeds)
                          for feeds in batches])
    row["accuracy_seconds"] = time.perf_counter() - start
    distinct = min(len(targets), len(dates.sentences("test")[0]))
    row["accuracy_samples"] = distinct
    exact, cer = score(dates.decode_targets(ids[:distinct]), targets[:distinct])
    row.update(exact_match=exact, cer=cer)
    if reference_path:
        with np.load(reference_path, allow_pickle=False) as data:
            row["top1_agreement"] = float(np.mean(ids == data["ids"]))
    feeds, steps = batches[0], dates.TARGET_LENGTH
    warmup = warmup_calls(row["accuracy_seconds"], len(batches))
    row.update(timed_row(runner, lambda: translator_export.decode(encoder.run, step.run, feeds),
                         case.batch, warmup))
    seconds = row["seconds"]
    row.update(tokens_per_s=case.batch * steps / seconds, latency_per_token=seconds / steps,
               sequence=SEQUENCE)
    # one sentence's work: the encoder once, the step once per generated character
    works = [model_work(getattr(s, "model", m))
             for s, m in ((encoder, encoder_model), (step, step_model))]
    row.update(work_row(works[0].flops + steps * works[1].flops,
                        works[0].bytes + steps * works[1].bytes, seconds))
    return row
