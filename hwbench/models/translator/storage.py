"""The translator's weights on disk: a plain ``.npz`` of named float32 arrays (no
pickled objects), with the model's name and the training run's metadata as JSON."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.datasets import dates
from hwbench.errors import ResultsError
from hwbench.files import write_atomic, write_new
from hwbench.models.translator.model import PARAM_NAMES, Params, init_params

NAME = "translator"
SHIPPED = Path(__file__).resolve().parent.parent / "weights" / f"{NAME}.npz"


def save_params(path: str | Path, params: Params, meta: dict[str, Any],
                new: bool = False) -> Path:
    """Write ``params``; ``new``: never replace a file (a taken ``path`` becomes
    ``stem-2.npz``, ...). Returns the path written."""
    arrays: dict[str, np.ndarray] = {name: params[name] for name in PARAM_NAMES}
    arrays["model"] = np.array(NAME)
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True, default=str))
    if new:
        return write_new(path, lambda fh: np.savez(fh, **arrays), binary=True)
    return write_atomic(path, lambda fh: np.savez(fh, **arrays), binary=True)


def load_params(path: str | Path | None = None) -> Params:
    """The shipped (or given) weights, checked against the shapes the dates vocabularies
    and the stored hidden size call for; ``allow_pickle`` stays off."""
    path = Path(path) if path is not None else SHIPPED
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model"]) != NAME:
                raise ResultsError(f"{path} holds weights of {str(data['model'])!r}, "
                                   f"not {NAME!r}")
            params = {name: data[name] for name in PARAM_NAMES}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ResultsError(f"cannot read {NAME} weights from {path}: {exc}") from exc
    hidden = params["enc_wh"].shape[0]
    expected = init_params(dates.source_vocabulary_size(), dates.target_vocabulary_size(),
                           hidden, seed=0)
    for name, array in params.items():
        if array.shape != expected[name].shape or array.dtype != np.float32:
            raise ResultsError(f"{path}: {name} of shape {array.shape} ({array.dtype}) does "
                               f"not fit a translator of hidden size {hidden} "
                               f"(expected {expected[name].shape} float32)")
    return params
