"""Skip marks for tests that need a backend this machine may lack, written once.

A missing backend skips with the reason its ``available()`` gives (what is missing and
what to install), never passes silently or fails.
"""

from __future__ import annotations

import pytest

from hwbench.backends import backend_class


def availability(name: str) -> tuple[bool, str]:
    """(usable here, why not) for backend ``name``; an import failure counts as absent."""
    try:
        return backend_class(name).available()
    except ImportError as exc:  # pragma: no cover - the backend modules always import
        return False, str(exc)


def needs_backend(name: str) -> pytest.MarkDecorator:
    """``skipif`` backend ``name`` is unavailable, saying why."""
    ok, why = availability(name)
    return pytest.mark.skipif(not ok, reason=f"{name} backend unavailable: {why}")
