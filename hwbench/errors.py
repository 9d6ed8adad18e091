"""The error types every layer of hwbench raises.

One small hierarchy so that callers can catch ``HwbenchError`` for anything hwbench
refuses, and so that argument mistakes stay ``ValueError``/``TypeError`` for code that
already expects NumPy's conventions.
"""

from __future__ import annotations


class HwbenchError(Exception):
    """Base class of every error hwbench raises on purpose."""


class ArgumentError(HwbenchError, ValueError):
    """A kernel or API argument has a bad value or shape; the message names the argument."""


class DTypeError(HwbenchError, TypeError):
    """An argument has a dtype the kernel does not accept; the message names the argument."""


class BackendUnavailableError(HwbenchError, RuntimeError):
    """A backend was asked for but cannot run here; the message says why and how to fix it."""


class UnsupportedError(HwbenchError, NotImplementedError):
    """The backend or device lacks a feature the call needs (an ISA, a dtype, an op)."""


class NativeLibraryError(HwbenchError, RuntimeError):
    """A native library (oneDNN, MKL, ...) returned an error status; the message names the call."""


class ResultsError(HwbenchError, OSError):
    """Results could not be read or written (a malformed file, a wrong schema version)."""


class ForeignArrayError(HwbenchError, TypeError):
    """An argument is an array another backend (or library) made: this backend cannot read
    it in place. The message names the argument, who made it, and how to move it over."""


class OutOfMemoryError(HwbenchError, MemoryError):
    """An allocation was refused before it was tried: the estimate of the bytes it needs
    exceeds what this machine (or device) has free. The message gives both figures and
    what would fit; ``MemoryError`` callers catch it as they would NumPy's."""
