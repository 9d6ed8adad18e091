"""Datasets that ship inside installed wheels (nothing is downloaded).

``digits`` is scikit-learn's copy of the UCI optical-digits data: 1,797 8×8 images of
handwritten digits. The zoo's small models are trained on its fixed split.
``dates.sentences`` generates human-written dates and their ISO 8601 forms from a seed:
the translator's data (``hwbench.datasets.dates``).
"""

from __future__ import annotations

import functools

import numpy as np

from hwbench.datasets import dates
from hwbench.errors import ArgumentError, BackendUnavailableError

__all__ = ["dates", "digits"]

SPLITS = ("train", "test")
TEST_EVERY = 5  # every 5th sample is a test sample: a split no library version can move


@functools.cache
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise BackendUnavailableError(
            "the digits data ships in scikit-learn: pip install scikit-learn") from exc
    data = load_digits()
    images = (data.images.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    return images, data.target.astype(np.int64)


def digits(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: images float32 (N, 1, 8, 8) in [0, 1] and labels int64 (N,).

    The split is fixed: sample i is in the test set when i % 5 == 0 (360 test, 1,437
    train samples), so results are comparable across machines and versions.
    """
    if split not in SPLITS:
        raise ArgumentError(f"argument 'split' must be one of {SPLITS}, got {split!r}")
    images, labels = _load_digits()
    test = np.arange(len(labels)) % TEST_EVERY == 0
    keep = test if split == "test" else ~test
    return images[keep].copy(), labels[keep].copy()
