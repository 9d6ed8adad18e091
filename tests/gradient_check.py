"""The directional finite-difference check of a model's (weight, bias) gradients, shared by
the digits and BEGAN tests: along one random unit direction per array, the central
difference of the loss against the analytic gradient's projection."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


def check_pair_gradients(loss: Callable[[list], float], params: list, grads: list,
                         rng: np.random.Generator, *, eps: float, rel: float,
                         abs: float) -> None:  # noqa: A002 - pytest.approx's own name
    """``params`` and ``grads``: lists of (weight, bias) pairs; ``loss(params)`` a float."""
    for index in range(len(params)):
        for part in (0, 1):
            direction = rng.standard_normal(params[index][part].shape).astype(np.float32)
            direction /= np.linalg.norm(direction)

            def shifted(sign, index=index, part=part, direction=direction):
                p = [list(pair) for pair in params]
                p[index][part] = (p[index][part] + sign * eps * direction).astype(np.float32)
                return [tuple(pair) for pair in p]

            numeric = (loss(shifted(+1)) - loss(shifted(-1))) / (2 * eps)
            analytic = float(np.vdot(grads[index][part], direction))
            assert numeric == pytest.approx(analytic, rel=rel, abs=abs), (index, part)
