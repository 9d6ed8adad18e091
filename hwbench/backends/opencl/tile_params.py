"""The OpenCL GEMM kernels' tile parameters: safe defaults, the search space, and the
parameters ``autotune`` chose, stored per device.

As CLBlast does, tuned parameters are stored per device, keyed by platform, device name
and driver version (a driver update may change the best tile), in one JSON file per
user: ``<cache>/opencl-tuning.json`` (``HWBENCH_CACHE_DIR`` moves it). The file is only
a hint: anything malformed or outside the search space is ignored and the defaults used.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from hwbench.backends.opencl.runtime import cache_dir
from hwbench.files import locked, write_atomic

# Parameters of each tunable kernel: default per device kind, and the allowed values.
# sgemm_packed (CPU): MR rows x 16 columns per micro-tile, MBLK x NBLK micro-tiles per
# work-item, KC-long slices of K; WIDE 1: its K loop in float16 for AVX-512 where PoCL's
# host has it (``runtime.pocl_avx512``; the float8 loop elsewhere). Defaults measured on
# a 2-core Zen 3 VM with PoCL 3.0; WIDE (5-15 % faster) and KC 512 (0-8 % over 256 on
# ResNet-50's and Inception's convs, bitwise the same sums) on a 2-core Zen 4 one.
# sgemm_tiled (GPU): TSM x TSN tiles per work-group, TSK-deep slices, WPTM x WPTN
# outputs per work-item (CLBlast-like; 256 work-items, 8 KiB of local memory).
# gemm_int8_packed and gemm_int8_tiled: the same roles for the int8 kernels (KC even,
# TSK a multiple of 4); int8 defaults measured on a 2-core Zen 4 VM with PoCL 3.0.
SPACES: dict[str, dict[str, tuple[int, ...]]] = {
    "sgemm_packed": {"MR": (4, 6), "MBLK": (4, 8, 16), "NBLK": (2, 4, 8),
                     "KC": (128, 256, 384, 512), "WIDE": (0, 1)},
    "sgemm_tiled": {"TSM": (32, 64, 128), "TSN": (32, 64, 128), "TSK": (8, 16, 32),
                    "WPTM": (2, 4, 8), "WPTN": (2, 4, 8)},
    "gemm_int8_packed": {"MR": (4, 6), "MBLK": (4, 8, 16), "NBLK": (2, 4, 8),
                         "KC": (256, 512, 1024)},
    "gemm_int8_tiled": {"TSM": (32, 64, 128), "TSN": (32, 64, 128), "TSK": (16, 32, 64),
                        "WPTM": (2, 4, 8), "WPTN": (2, 4, 8)},
}
DEFAULTS: dict[str, dict[str, int]] = {
    "sgemm_packed": {"MR": 6, "MBLK": 8, "NBLK": 4, "KC": 512, "WIDE": 1},
    "sgemm_tiled": {"TSM": 64, "TSN": 64, "TSK": 16, "WPTM": 4, "WPTN": 4},
    "gemm_int8_packed": {"MR": 6, "MBLK": 8, "NBLK": 4, "KC": 512},
    "gemm_int8_tiled": {"TSM": 64, "TSN": 64, "TSK": 32, "WPTM": 4, "WPTN": 4},
}
# Bytes of local memory per element of a tiled kernel's TSK x (TSM + TSN) tiles.
TILED_ELEMENT_BYTES = {"sgemm_tiled": 4, "gemm_int8_tiled": 1}
MAX_TILED_LOCAL_BYTES = 32 * 1024


def tuning_file() -> Path:
    return cache_dir() / "opencl-tuning.json"


def valid(kernel: str, params: Any, max_work_group: int = 1024,
          local_mem: int = MAX_TILED_LOCAL_BYTES) -> bool:
    """Whether ``params`` is a complete point of ``kernel``'s search space that the device
    can run (work-group size and local memory for the tiled kernels)."""
    space = SPACES.get(kernel)
    if space is None or not isinstance(params, dict) or set(params) != set(space):
        return False
    if not all(isinstance(params[k], int) and params[k] in v for k, v in space.items()):
        return False
    if kernel in TILED_ELEMENT_BYTES:
        threads = (params["TSM"] // params["WPTM"]) * (params["TSN"] // params["WPTN"])
        local_bytes = (TILED_ELEMENT_BYTES[kernel] * params["TSK"]
                       * (params["TSM"] + params["TSN"]))
        return 16 <= threads <= max_work_group and local_bytes <= min(local_mem,
                                                                      MAX_TILED_LOCAL_BYTES)
    return True


def candidates(kernel: str, max_work_group: int = 1024,
               local_mem: int = MAX_TILED_LOCAL_BYTES) -> list[dict[str, int]]:
    """Every valid point of the search space, the default first."""
    space = SPACES[kernel]
    points = [dict(zip(space, values, strict=True)) for values in itertools.product(
        *space.values())]
    points = [p for p in points if valid(kernel, p, max_work_group, local_mem)]
    default = DEFAULTS[kernel]
    return [default] + [p for p in points if p != default]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("devices"), dict) else {}


def tuned(device_key: str, kernel: str) -> dict[str, int] | None:
    """The stored winner for this device and kernel, if there is a valid one."""
    entry = _read(tuning_file()).get("devices", {}).get(device_key, {}).get(kernel)
    params = entry.get("params") if isinstance(entry, dict) else None
    return dict(params) if valid(kernel, params) else None


def store(device_key: str, kernel: str, params: dict[str, int], gflops: float,
          shape: tuple[int, int, int]) -> Path:
    """Record a winner (read, update, write atomically, under a lock: two tunes at once
    keep both winners)."""
    path = tuning_file()
    with locked(path):
        data = _read(path) or {"version": 1, "devices": {}}
        data["devices"].setdefault(device_key, {})[kernel] = {
            "params": params, "gflops": round(gflops, 2), "shape": list(shape)}
        return write_atomic(path, lambda fh: json.dump(data, fh, indent=1, sort_keys=True))
