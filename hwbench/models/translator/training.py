"""Training and scoring the translator: Adam on the dates train split, greedy decoding
scored by exact match and character error rate on the test split.

The gradients come from ``model.loss_and_gradients`` through a backend's kernels; the
optimizer's elementwise update runs on the host in float32, as the digits models' SGD
does. The same seed on the same backend gives the same weights.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hwbench.backends.base import Backend
from hwbench.datasets import dates
from hwbench.errors import ArgumentError
from hwbench.models import train_report
from hwbench.models.translator import model
from hwbench.models.translator.ops import KernelOps, Ops


@dataclass(frozen=True)
class Config:
    """Sizes and schedule; the defaults made the shipped weights."""

    hidden: int = 32
    epochs: int = 4
    batch_size: int = 64
    learning_rate: float = 0.01  # Adam's step, cosine-decayed to 0 over the run
    clip: float = 5.0            # global gradient norm cap (LSTMs' occasional spikes)
    train_size: int = dates.SIZES["train"]


@dataclass
class Scores:
    """Test metrics: exact match (fraction of dates entirely right) and character error
    rate (edit distance / target characters), with the copy-the-input and the
    most-frequent-train-output baselines beside them."""

    exact_match: float
    cer: float
    copy_exact_match: float
    copy_cer: float
    frequent_exact_match: float
    frequent_cer: float
    sentences: int


@dataclass
class TrainReport(train_report.TrainReport):
    scores: Scores | None  # None when trained with evaluate_after=False


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each 1)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def score(predicted: list[str], targets: list[str]) -> tuple[float, float]:
    """``(exact match, character error rate)`` of predicted ISO dates."""
    exact = float(np.mean([p == t for p, t in zip(predicted, targets, strict=True)]))
    edits = sum(edit_distance(p, t) for p, t in zip(predicted, targets, strict=True))
    return exact, edits / sum(len(t) for t in targets)


def translate(ops: Ops, params: model.Params, sources: list[str],
              batch_size: int = 500) -> list[str]:
    """ISO dates for human-written ``sources``, greedy-decoded in batches."""
    out: list[str] = []
    for first in range(0, len(sources), batch_size):
        ids, lengths = dates.encode_sources(sources[first:first + batch_size])
        out += dates.decode_targets(
            model.translate_ids(ops, params, ids, lengths, dates.TARGET_LENGTH))
    return out


def evaluate(be: Backend | Ops, params: model.Params, split: str = "test",
             seed: int = 0) -> Scores:
    """The metrics of ``params`` on a split, decoded with ``be``'s kernels."""
    ops = KernelOps(be) if isinstance(be, Backend) else be
    sources, targets = dates.sentences(split, seed=seed)
    exact, cer = score(translate(ops, params, sources), targets)
    copy_exact, copy_cer = score(sources, targets)
    frequent = Counter(dates.sentences("train")[1]).most_common(1)[0][0]
    freq_exact, freq_cer = score([frequent] * len(targets), targets)
    return Scores(exact, cer, copy_exact, copy_cer, freq_exact, freq_cer, len(targets))


class Adam:
    """Adam (Kingma & Ba) on host float32 arrays, with a global-norm gradient clip."""

    def __init__(self, params: model.Params, clip: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.clip, self.betas, self.eps, self.steps = clip, betas, eps, 0

    def step(self, params: model.Params, grads: model.Params, lr: float) -> None:
        norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
        scale = np.float32(min(1.0, self.clip / max(norm, 1e-12)))
        b1, b2 = self.betas
        self.steps += 1
        step = lr * np.sqrt(1 - b2 ** self.steps) / (1 - b1 ** self.steps)
        for k, g in grads.items():
            g = g.astype(np.float32) * scale
            self.m[k] = (b1 * self.m[k] + (1 - b1) * g).astype(np.float32)
            self.v[k] = (b2 * self.v[k] + (1 - b2) * g * g).astype(np.float32)
            update = step * self.m[k] / (np.sqrt(self.v[k]) + self.eps)
            params[k] = (params[k] - update).astype(np.float32)


def _check_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 1):
            raise ArgumentError(f"argument {name!r} must be a positive int, got {value!r}")


def train(be: Backend, *, seed: int = 0, epochs: int | None = None,
          config: Config = Config(), train_size: int | None = None,
          evaluate_after: bool = True,
          progress: Callable[[int, float], None] | None = None,
          ) -> tuple[model.Params, TrainReport]:
    """Adam on ``train_size`` train sentences (drawn with ``seed``) for ``epochs``;
    returns the weights and a report with the losses, samples/s and test scores.
    ``progress(epoch, mean loss)`` is called after each epoch (a run takes minutes)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ArgumentError(f"argument 'seed' must be a non-negative int (NumPy's seeds), "
                            f"got {seed!r}")
    _check_positive(epochs=epochs, train_size=train_size)
    epochs = config.epochs if epochs is None else epochs
    train_size = config.train_size if train_size is None else train_size
    ops = KernelOps(be)
    sources, targets = dates.sentences("train", train_size, seed=seed)
    target_ids = dates.encode_targets(targets)
    params = model.init_params(dates.source_vocabulary_size(), dates.target_vocabulary_size(),
                               config.hidden, seed)
    adam = Adam(params, config.clip)
    order_rng = np.random.default_rng(seed + 1)
    batches = -(-train_size // config.batch_size)
    losses = []
    start = time.perf_counter()
    for epoch in range(epochs):
        order = order_rng.permutation(train_size)
        total = 0.0
        for b in range(batches):
            batch = order[b * config.batch_size:(b + 1) * config.batch_size]
            lr = config.learning_rate * 0.5 * (1 + np.cos(np.pi * (epoch * batches + b)
                                                           / (epochs * batches)))
            ids, lengths = dates.encode_sources([sources[i] for i in batch])
            loss, grads = model.loss_and_gradients(ops, params, ids, lengths,
                                                   target_ids[batch])
            adam.step(params, grads, lr)
            total += loss * len(batch)
        losses.append(total / train_size)
        if progress is not None:
            progress(epoch + 1, losses[-1])
    ops.synchronize()
    seconds = time.perf_counter() - start
    scores = evaluate(ops, params) if evaluate_after else None
    report = TrainReport("translator", be.full_name, seed, epochs, seconds,
                         epochs * train_size / seconds, losses, scores)
    return params, report
