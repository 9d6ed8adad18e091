"""Atomic file writes, for everything hwbench saves (results, trained weights), and the
one reader of users' text and JSON files, whose errors name the argument the file came from.

The data goes to a temporary file in the target's folder, is fsynced, then renamed over
the target: a reader, or a run interrupted halfway, sees the old file or the new one,
never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from hwbench.errors import ArgumentError, HwbenchError, ResultsError


def write_atomic(path: str | os.PathLike, write: Callable[[IO[Any]], None],
                 binary: bool = False) -> Path:
    """Call ``write(file)`` on a temporary file, then rename it to ``path`` atomically."""
    target = Path(path)
    if target.is_dir():
        raise ResultsError(f"cannot write {target}: it is a folder")
    tmp = _written_temporary(target, write, binary)
    try:
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _written_temporary(target: Path, write: Callable[[IO[Any]], None], binary: bool) -> str:
    """A complete, synced temporary file beside ``target`` holding what ``write`` wrote
    (removed again if writing fails): what both ways of saving a file rename or link."""
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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


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



# -- new files: never replace one -----------------------------------------------------------
MAX_UNIQUE_TRIES = 10_000


def numbered(path: Path, n: int) -> Path:
    """``path`` itself for ``n`` 1, else ``stem-n.suffix`` (``models-host-stamp-2.json``)."""
    return path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")


def write_new(path: str | os.PathLike, write: Callable[[IO[Any]], None], binary: bool = False,
              unique: bool = True) -> Path:
    """Write a file that did not exist, complete or not at all; return its path.

    Two writers (two runs started in the same second) never share a file: the data goes to
    a temporary file, then takes the name with ``os.link``, which fails if the name exists
    (atomic on every POSIX file system). With ``unique`` a taken name is tried again as
    ``stem-2``, ``stem-3``, ...; without, a taken name raises ``ResultsError``. Where the
    file system has no hard links, the name is reserved with ``O_CREAT | O_EXCL`` and the
    data renamed onto it.
    """
    target = Path(path)
    tmp = _written_temporary(target, write, binary)
    try:
        for n in range(1, MAX_UNIQUE_TRIES + 1 if unique else 2):
            candidate = numbered(target, n)
            try:
                _claim(tmp, candidate)
                return candidate
            except FileExistsError:
                continue
            except OSError as exc:
                raise ResultsError(f"cannot write {candidate}: {exc}") from exc
        raise ResultsError(f"{target} exists" + (f" (and {MAX_UNIQUE_TRIES - 1} numbered "
                                                 "variants)" if unique else ""))
    finally:
        Path(tmp).unlink(missing_ok=True)


def _claim(tmp: str, name: Path) -> None:
    """Give the finished temporary file ``tmp`` the name ``name`` if no file has it."""
    try:
        os.link(tmp, name)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network and FAT file systems)
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(tmp, name)


def make_new_folder(path: str | os.PathLike) -> Path:
    """Create a folder that did not exist (``os.mkdir`` is exclusive), ``path-2``, ``-3``,
    ... if the name is taken; return it. For reports that are a folder of fixed names."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"cannot create {target.parent}: {exc}") from exc
    for n in range(1, MAX_UNIQUE_TRIES + 1):
        candidate = target if n == 1 else target.with_name(f"{target.name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            raise ResultsError(f"cannot create {candidate}: {exc}") from exc
    raise ResultsError(f"{target} exists (and {MAX_UNIQUE_TRIES - 1} numbered variants)")


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` + ``.lock`` for a read-modify-write of ``path``
    (two processes updating one cache file keep both updates). ``fcntl.flock`` where the
    OS has it; elsewhere no lock (the last writer wins, as before)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    lock = Path(f"{path}.lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise ResultsError(f"cannot lock {path}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
