"""The opencl backend's per-run host-to-device work without host synchronisations (issue
16): on PoCL's default device a blocking write waits for its worker threads (~35 µs,
more than a whole mlp run on ``cpu``), so per-run data (feeds, Gather's token ids, an
LSTM's masks) is written without waiting, and a compiled plan's later runs may be a
recorded command list (``recording``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.opencl import recording
from hwbench.backends.opencl.runtime import native_error

ASYNC_UPLOAD_BYTES = 1 << 20  # feeds up to this size are copied and written without a wait


class UploadsOpencl:
    """``asarray_feed``, ``_upload`` and ``recorded_body`` mixed into ``OpenclBackend``."""

    def asarray_feed(self, x: Any) -> Any:
        """A graph input for one plan run: a small one copied on the host first and written
        without waiting; the copy is private, so the caller may change its array at once."""
        if self._is_device_array(x):
            return x
        host = np.asarray(x)
        if host.nbytes > ASYNC_UPLOAD_BYTES:  # not frozen: a recorded run rewrites it
            return self._to_device(host)
        return self._upload(np.array(host, order="C", copy=True))

    def _upload(self, host: np.ndarray) -> Any:
        """``host`` (C-contiguous, owned by the caller and never written again) on the
        device, the copy enqueued without waiting for it (pyopencl holds ``host`` until
        it is done; the array keeps the event)."""
        out = self._empty(host.shape, host.dtype)  # (pyopencl's to_device: ~20 µs more)
        try:
            if host.nbytes:
                out.add_event(self.dev.cl.enqueue_copy(self.dev.queue, out.data, host,
                                                       is_blocking=False))
            return out
        except self.dev.cl.Error as exc:
            raise native_error(f"copying {host.nbytes} bytes to the device", exc) from exc

    def recorded_body(self, executor: Any, feeds: dict[str, np.ndarray]) -> Any:
        """A compiled plan's later runs as a recorded command list (``recording``)."""
        return recording.recorded_body(self, executor, feeds)
