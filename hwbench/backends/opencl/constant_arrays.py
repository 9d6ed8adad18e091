"""Arrays ``OpenclBackend.asarray`` copied from the host refuse writes, as the cpu
backend's frozen copies do (``backends/frozen.py``).

``packed_weights`` keeps a GEMM's packed B panels for such an array's life on the
promise that it is never written. Nothing in hwbench writes one, but user code holding
the pyopencl array could (``set``, ``fill``, ``x[...] = v``, ``x += 1``, a writable
``map_to_host``), and the next
GEMM would then read the panels of the old values: a silent wrong answer (it did, before
this module). Frozen arrays are given a subclass whose writing methods raise; its views
(``reshape``, slices) stay read-only, arrays with new memory (``x + 1``, ``copy``) are
ordinary ones.
"""

from __future__ import annotations

from typing import Any

from hwbench.errors import ArgumentError

_classes: dict[type, type] = {}
_WRITERS = ("set", "fill", "setitem", "__setitem__", "__iadd__", "__isub__", "__imul__",
            "__itruediv__", "__iand__", "__ior__", "__ixor__")


def _refuse(name: str) -> Any:
    def refused(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise ArgumentError(
            f"opencl: argument 'self' of {name} is an array from asarray, a constant (its "
            f"GEMM panels are kept: packed_weights) that cannot be written; use "
            f"backend.empty or asarray_feed for an array you will write")
    refused.__name__ = name
    return refused


def constant_class(array_type: type) -> type:
    """The read-only subclass of ``array_type`` (pyopencl's ``Array``), made once."""
    made = _classes.get(array_type)
    if made is not None:
        return made

    def _new_like_me(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = array_type._new_like_me(self, *args, **kwargs)
        out.__class__ = array_type  # new memory: an ordinary array
        return out

    def _new_with_changes(self: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        out = array_type._new_with_changes(self, data, *args, **kwargs)
        if data is None:  # new memory (a copy): ordinary; a view keeps the class
            out.__class__ = array_type
        return out

    def map_to_host(self: Any, queue: Any = None, flags: Any = None, *args: Any,
                    **kwargs: Any) -> Any:
        import pyopencl as cl  # (loaded: this array is one of its)

        read = cl.map_flags.READ
        if flags is not None and flags & ~read:
            _refuse("map_to_host (for writing)")(self)
        host = array_type.map_to_host(self, queue, read, *args, **kwargs)
        host.flags.writeable = False  # (pyopencl maps read and write by default)
        return host

    body: dict[str, Any] = {name: _refuse(name) for name in _WRITERS
                            if hasattr(array_type, name)}
    body["map_to_host"] = map_to_host
    body.update(_new_like_me=_new_like_me, _new_with_changes=_new_with_changes,
                __doc__="A device array that refuses writes (``constant_arrays``).",
                __module__=array_type.__module__)  # (``checks.array_maker``: still pyopencl's)
    made = _classes[array_type] = type("ConstantArray", (array_type,), body)
    return made


def make_constant(array: Any) -> Any:
    """``array`` (a pyopencl array nothing else holds yet) made read-only; returned."""
    array.__class__ = constant_class(type(array))
    return array
