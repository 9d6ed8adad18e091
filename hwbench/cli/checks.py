"""The CLI's options checked before anything runs, and its exit status when nothing did.

Why up front: a run can take an hour; an ``--output`` it cannot write, found at the end,
loses all of it, and a ``--timeout 0`` or ``--repeats 0`` produces a table of nothing with
exit status 0. Every number is checked here (finite; positive where zero means nothing
would run; whole and >= 1 for counts) and every destination (its folder exists or can be
created, and a file can be made there), each with an ``ArgumentError`` naming the option.

The destination probe creates and removes a temporary file in the nearest folder that
exists (what the run would need); it creates no folder itself.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hwbench.errors import ArgumentError

# What each command's numeric options must be: (attribute, option, kind).
#   count: an int >= 1; seconds: a finite number > 0; seconds0: finite and >= 0;
#   seed: an int >= 0; counts: a tuple of ints >= 1. None (an unset option) passes.
_MEASURE = [("threads", "--threads", "count"), ("max_time", "--max-time", "seconds"),
            ("timeout", "--timeout", "seconds"), ("repeats", "--repeats", "count"),
            ("min_time", "--min-time", "seconds0")]
NUMBERS: dict[str, list[tuple[str, str, str]]] = {
    "kernels": [*_MEASURE, ("batch", "--batch", "count"), ("seed", "--seed", "seed")],
    "run": [*_MEASURE, ("batch", "--batch", "counts")],
    "train": [("seed", "--seed", "seed"), ("epochs", "--epochs", "count"),
              ("threads", "--threads", "count")],
    "tune": [("size", "--size", "count"), ("budget", "--budget", "seconds0")],  # 0: defaults only
    "simulate": [("batch", "--batch", "count")],
    "sweep": [("timeout", "--timeout", "seconds"), ("workers", "--workers", "count")],
}


def check_number(value: Any, option: str, kind: str) -> None:
    """Raise ``ArgumentError`` naming ``option`` unless ``value`` is a ``kind`` (above)."""
    if value is None:
        return
    if kind == "counts":
        if not value:
            raise ArgumentError(f"argument '{option}': give at least one value")
        for item in value:
            check_number(item, option, "count")
        return
    if kind in ("count", "seed"):
        least = 1 if kind == "count" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ArgumentError(f"argument '{option}' must be an integer >= {least}, got "
                                f"{value!r}")
        return
    number = float(value)
    if not math.isfinite(number):
        raise ArgumentError(f"argument '{option}' must be a finite number of seconds, got "
                            f"{value!r}")
    if kind == "seconds" and number <= 0:
        raise ArgumentError(f"argument '{option}' must be more than 0 seconds, got {value!r}")
    if kind == "seconds0" and number < 0:
        raise ArgumentError(f"argument '{option}' must be 0 seconds or more, got {value!r}")


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while True:
        try:
            if path.exists() or path == path.parent:
                return path
        except OSError:
            pass
        path = path.parent


def _probe(folder: Path, option: str, target: Path) -> None:
    """Can a file be created in ``folder`` (on the way to ``target``)?"""
    if not folder.is_dir():
        raise ArgumentError(f"argument '{option}': cannot write {target}: {folder} is a file, "
                            "not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".hwbench-probe-", dir=folder)
    except OSError as exc:
        raise ArgumentError(f"argument '{option}': cannot write {target}: {folder}: "
                            f"{exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(name)


def check_folder(path: str | os.PathLike, option: str) -> None:
    """``path`` is a folder results can be written into (it may not exist yet)."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ArgumentError(f"argument '{option}': {target} is a file, not a folder")
    _probe(_nearest_existing(target), option, target)


def check_file(path: str | os.PathLike, option: str) -> None:
    """``path`` is a file that can be written (it may not exist yet)."""
    target = Path(path)
    if target.is_dir():
        raise ArgumentError(f"argument '{option}': {target} is a folder, not a file")
    _probe(_nearest_existing(target.parent if str(target.parent) else Path(".")), option,
           target)


def _destinations(args: argparse.Namespace) -> Iterable[tuple[str, str, bool]]:
    """(path, option, is_folder) for everything ``args``' command will write."""
    command = args.command
    saving = not getattr(args, "no_save", False)
    if command in ("kernels", "run", "simulate", "sweep") and saving:
        yield args.output, "--output", True
    if command == "run":
        for attr, option in (("markdown", "--markdown"), ("csv", "--csv")):
            if getattr(args, attr, None):
                yield getattr(args, attr), option, False
    if command == "report":
        yield args.output, "-o/--output", True
    if command == "roofline" and args.output:
        yield args.output, "-o/--output", False
    if command == "train":
        yield args.output or f"results/weights/{args.model}.npz", "--output", False


def check_options(args: argparse.Namespace) -> None:
    """Every numeric option and every destination of ``args``' command, before it runs."""
    for attr, option, kind in NUMBERS.get(args.command, []):
        check_number(getattr(args, attr, None), option, kind)
    for path, option, is_folder in _destinations(args):
        (check_folder if is_folder else check_file)(path, option)


def outcome(rows: list[dict[str, Any]], failed_backends: dict[str, Any] | None = None
            ) -> tuple[int, str | None]:
    """The exit status of a measuring command by its rows, and what to say: 1 when no
    row succeeded (every backend unavailable, every case failed), else 0, with a count
    of the rows that did not run or failed when some did not."""
    ok = sum(row.get("status") == "ok" for row in rows)
    bad = len(rows) - ok
    lost = len(failed_backends or {})
    if ok == 0:
        why = [f"{bad} row(s) failed or unsupported"] if bad else []
        if lost:
            why.append(f"{lost} backend(s) could not start")
        return 1, "nothing ran: " + ("; ".join(why) or "no row was measured")
    if bad or lost:
        parts = [f"{bad} of {len(rows)} row(s) failed or unsupported"] if bad else []
        if lost:
            parts.append(f"{lost} backend(s) could not start")
        return 0, "; ".join(parts)
    return 0, None
