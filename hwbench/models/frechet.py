"""An FID for 8×8 digits: the Fréchet distance between Gaussians fitted to the shipped
LeNet's penultimate features (84 ReLU outputs) of generated images and of the digits
test split, and LeNet's class distribution over the generated images (are all ten
digits made?). Each comes beside the same numbers for uniform noise and for a generator
that always draws the mean training image, so a number has a scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.base import Backend
from hwbench.datasets import digits
from hwbench.errors import ArgumentError
from hwbench.models import digits as lenet_models

FEATURE_LAYER = 3  # LeNet's layers: conv, conv, dense 120, dense 84 (this one), dense 10
SHARE = 0.05       # a class counts as made when at least 5 % of the images are it


def lenet_features(be: Backend, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shipped LeNet's penultimate features (N, 84) and its logits (N, 10)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (1, 8, 8) or len(images) < 2:
        raise ArgumentError(f"argument 'images' must be (N >= 2, 1, 8, 8), got {images.shape}")
    arch = lenet_models.architecture("lenet")
    trace = lenet_models._Trace()
    logits = lenet_models.forward(be, arch, lenet_models.load_params("lenet"),
                                  np.ascontiguousarray(images, np.float32), trace)
    return trace.outputs[FEATURE_LAYER], logits


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``|μa − μb|² + Tr(Σa + Σb − 2 (Σa Σb)^½)`` of two feature sets (rows), in float64.
    The trace of the square root is that of the symmetric ``Σa^½ Σb Σa^½``'s."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    vals, vecs = np.linalg.eigh(cov_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = float(np.sum(np.sqrt(np.clip(cross, 0.0, None))))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b)
                 - 2.0 * trace_root)


def class_spread(logits: np.ndarray) -> dict[str, Any]:
    """LeNet's predicted classes: the share of each digit, their entropy in bits (all ten
    equally: log2 10 = 3.32) and how many digits have at least ``SHARE`` of the images."""
    counts = np.bincount(np.asarray(logits).argmax(axis=1), minlength=10)
    shares = counts / counts.sum()
    nonzero = shares[shares > 0]
    return {"class_shares": [round(float(s), 4) for s in shares],
            "class_entropy_bits": float(-(nonzero * np.log2(nonzero)).sum()) + 0.0,  # no -0
            "classes_made": int(np.sum(shares >= SHARE))}


def _test_features(be: Backend) -> np.ndarray:
    return lenet_features(be, digits("test")[0])[0]


def generator_metrics(be: Backend, images: np.ndarray,
                      reference: np.ndarray | None = None) -> dict[str, Any]:
    """``fid`` (against the test split's features) and ``class_spread`` of ``images``."""
    features, logits = lenet_features(be, images)
    reference = _test_features(be) if reference is None else reference
    return {"fid": frechet_distance(features, reference), **class_spread(logits)}


def baseline_images(n: int = 1000, seed: int = 1234) -> dict[str, np.ndarray]:
    """``noise`` (uniform in [0, 1]) and ``mean image`` (the train split's, n times)."""
    noise = np.random.default_rng(seed).uniform(0.0, 1.0, (n, 1, 8, 8)).astype(np.float32)
    mean = np.repeat(digits("train")[0].mean(axis=0, keepdims=True), n, axis=0)
    return {"noise": noise, "mean image": mean}


def with_baselines(be: Backend, images: np.ndarray) -> dict[str, dict[str, Any]]:
    """``generator_metrics`` of ``images`` (key ``generated``) and of each baseline."""
    reference = _test_features(be)
    out = {"generated": generator_metrics(be, images, reference)}
    for name, base in baseline_images(len(images)).items():
        out[name] = generator_metrics(be, base, reference)
    return out


def format_metrics(metrics: dict[str, Any]) -> list[str]:
    """One report line per set of ``generator_metrics`` (flat, or keyed by generator)."""
    table = metrics if "fid" not in metrics else {"generated": metrics}
    return [f"{name}: FID {m['fid']:.2f}, LeNet class entropy {m['class_entropy_bits']:.2f} "
            f"bits, {m['classes_made']} digits with >= {SHARE:.0%} of the images"
            for name, m in table.items()]
