"""Atomic file writes, for everything hwbench saves (results, trained weights), and text
reads whose errors name the argument the file came from.

The data goes to a temporary file in the target's folder, is fsynced, then renamed over
the target: a reader, or a run interrupted halfway, sees the old file or the new one,
never half of one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from hwbench.errors import ArgumentError, ResultsError


def write_atomic(path: str | os.PathLike, write: Callable[[IO[Any]], None],
                 binary: bool = False) -> Path:
    """Call ``write(file)`` on a temporary file, then rename it to ``path`` atomically."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise ResultsError(f"cannot write {target}: {exc}") from exc
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; saved files are for sharing
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})
                       ) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_text(path: str | os.PathLike, argument: str, encoding: str = "utf-8") -> str:
    """A user's text file (a config, a topology): a missing or binary file raises
    ``ArgumentError`` naming ``argument`` and the path."""
    path = Path(path)
    try:
        return path.read_text(encoding=encoding)
    except OSError as exc:
        raise ArgumentError(f"argument '{argument}': cannot read {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ArgumentError(f"{path}: not a text file ({exc})") from exc
