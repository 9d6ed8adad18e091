"""A row's status, set where the row is made, from the exception's type.

``status`` is ``ok``, ``unsupported`` (an ``UnsupportedError``: the backend lacks an op, a
dtype, an ISA) or ``error`` (anything else). ``refused`` says whether hwbench refused the
case on purpose (an argument, a dtype, an unavailable backend, an unsupported feature):
deterministic, so a sweep does not retry it. Readers (the tables, ``compare``, the sweep)
read these fields; none parses them back out of the reason's text, which is free to say
anything (an exception's message may itself start with "UnsupportedError").
"""

from __future__ import annotations

from typing import Any

from hwbench.errors import (
    ArgumentError,
    BackendUnavailableError,
    DTypeError,
    UnsupportedError,
)

OK, UNSUPPORTED, ERROR = "ok", "unsupported", "error"
REFUSALS = (ArgumentError, DTypeError, BackendUnavailableError, UnsupportedError)


def failure_fields(exc: BaseException) -> dict[str, Any]:
    """``status``, ``reason`` and ``refused`` of a case (or a worker) that raised ``exc``."""
    return {"status": UNSUPPORTED if isinstance(exc, UnsupportedError) else ERROR,
            "reason": f"{type(exc).__name__}: {exc}", "refused": isinstance(exc, REFUSALS)}
