"""Atomic file writes, for everything hwbench saves (results, trained weights), and the
one reader of users' text and JSON files, whose errors name the argument the file came from.

The data goes to a temporary file in the target's folder, is fsynced, then renamed over
the target: a reader, or a run interrupted halfway, sees the old file or the new one,
never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from hwbench.errors import ArgumentError, HwbenchError, ResultsError


def write_atomic(path: str | os.PathLike, write: Callable[[IO[Any]], None],
                 binary: bool = False) -> Path:
    """Call ``write(file)`` on a temporary file, then rename it to ``path`` atomically."""
    target = Path(path)
    if target.is_dir():
        raise ResultsError(f"cannot write {target}: it is a folder")
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


def read_text(path: str | os.PathLike, argument: str, encoding: str = "utf-8",
              error: type[HwbenchError] = ArgumentError) -> str:
    """A user's text file (a config, a topology, a spec, results): every way it can fail to
    be one -- missing, a folder, unreadable, empty, binary, not ``encoding`` -- raises
    ``error`` (an ``hwbench.errors`` type) naming ``argument`` and the path, so no caller
    ever shows a ``UnicodeDecodeError`` or ``IsADirectoryError`` traceback."""
    path = Path(path)
    where = f"argument '{argument}': cannot read {path}"
    if path.is_dir():
        raise error(f"{where}: it is a folder, not a file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{where}: it does not exist") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise error(f"{where} ({getattr(exc, 'strerror', None) or exc})") from exc
    if not data.strip():
        raise error(f"{where}: it is empty")
    nul = data.find(b"\x00")
    if nul >= 0:  # valid UTF-8 can hold NULs; no text file of ours does
        raise error(f"{where}: not a text file (binary data: a NUL byte at offset {nul})")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise error(f"{where}: not a text file (not {exc.encoding} at byte offset "
                    f"{exc.start})") from exc
    except LookupError as exc:  # an unknown encoding name: a caller's mistake
        raise ArgumentError(f"unknown text encoding {encoding!r}") from exc


def read_json(path: str | os.PathLike, argument: str,
              error: type[HwbenchError] = ArgumentError) -> Any:
    """A user's JSON file, through ``read_text``; malformed or truncated JSON raises
    ``error`` with the line and column where parsing stopped."""
    text = read_text(path, argument, error=error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        ended = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated")
        why = "ends early (truncated?)" if ended else f"not valid JSON: {exc.msg}"
        raise error(f"argument '{argument}': {path}:{exc.lineno}:{exc.colno}: {why}") from exc
    except RecursionError as exc:  # "[[[[...": nesting deeper than Python's stack
        raise error(f"argument '{argument}': {path}: JSON nested too deeply") from exc
