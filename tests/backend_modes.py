"""Every backend in every mode it is used in, for the tests that compare them all.

A backend runs kernels in two modes: called directly (``get_backend(name)``: NaN screen
on, plain layouts out) and inside a ``Session`` (``session_backend(name)``: no screen,
``cpu`` keeps activations in oneDNN's blocked layout and int8 ones channels-last). Both
are listed, with the cpu flavours a Session can be given (``cpu:mkl``,
``cpu:float32-requant``). A mode whose backend is absent skips with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from hwbench.backends import get_backend
from hwbench.models.session import session_backend
from hwbench.pytest_plugin import availability

# Names a Session accepts and this project can run somewhere (cuda: where CuPy is).
BACKENDS = ("numpy", "cpu", "cpu:mkl", "cpu:float32-requant", "opencl", "systolic", "cuda")
# mode id -> (backend name, "direct" or "session")
MODES: dict[str, tuple[str, str]] = {
    **{f"{name}/direct": (name, "direct") for name in BACKENDS},
    **{f"{name}/session": (name, "session") for name in BACKENDS},
}

_made: dict[str, Any] = {}


def available(mode: str) -> tuple[bool, str]:
    return availability(MODES[mode][0])


def backend_for(mode: str) -> Any:
    """The backend of ``mode`` (made once per test session), or a skip saying why not."""
    name, how = MODES[mode]
    ok, why = availability(name)
    if not ok:
        pytest.skip(f"backend {name} unavailable: {why}")
    if mode not in _made:
        _made[mode] = get_backend(name) if how == "direct" else session_backend(name)
    return _made[mode]


def quantizes_float_math(backend: Any) -> bool:
    """Whether ``backend`` serves float32 gemm/conv in int8 (the systolic simulator)."""
    return backend.info().get("math_mode") == "int8-quantized"


def float32_requant(backend: Any) -> bool:
    """Whether ``backend`` requantizes int8 results with float32 scales (within 1 LSB)."""
    return getattr(backend, "requantization", "exact") == "float32"
