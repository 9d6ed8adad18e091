"""Build and launch one OpenCL program in a throw-away process (run as a script).

A device compiler can abort the whole process: PoCL's LLVM dies with "LLVM ERROR: Cannot
select" on some vector built-ins, and it compiles a kernel only when it first *runs* (per
work-group size), so a successful clBuildProgram proves nothing. This script builds the
program, then runs every kernel once at each work-group size it will be launched with,
with zeroed buffers and zero scalars (hwbench's kernels then return at their bounds
checks). Exit status 0 means the device compiled everything; the parent then builds the
same program in its own process, served from the driver's on-disk cache.

Reads a JSON request on stdin: platform, device (indices), name (the device's, checked),
source, options (a list, with -cl-kernel-arg-info), launches ({kernel: [local size, ...]}).
It imports only pyopencl and NumPy, and is run with ``python -P`` so that nothing beside it
shadows a module.
"""

from __future__ import annotations

import json
import re
import sys

DUMMY_BYTES = 1 << 20
SCALAR_BYTES = {"char": 1, "uchar": 1, "short": 2, "ushort": 2, "half": 2, "int": 4,
                "uint": 4, "float": 4, "long": 8, "ulong": 8, "double": 8, "size_t": 8,
                "bool": 1}


def scalar_size(type_name: str) -> int:
    """Bytes of a by-value kernel argument such as ``int``, ``float4`` or ``uint3``."""
    match = re.fullmatch(r"(?:unsigned )?([a-z_]+?)(\d*)", type_name.strip())
    if match is None or match.group(1) not in SCALAR_BYTES:
        raise ValueError(f"cannot size kernel argument type {type_name!r}")
    width = int(match.group(2) or 1)
    return SCALAR_BYTES[match.group(1)] * (4 if width == 3 else width)


def main() -> int:
    request = json.load(sys.stdin)
    import numpy as np
    import pyopencl as cl

    device = cl.get_platforms()[request["platform"]].get_devices()[request["device"]]
    if device.name.strip() != request["name"]:
        print(f"device mismatch: {device.name!r} != {request['name']!r}", file=sys.stderr)
        return 3
    ctx = cl.Context([device])
    queue = cl.CommandQueue(ctx)
    try:
        program = cl.Program(ctx, request["source"]).build(
            options=request["options"], cache_dir=False)
    except cl.Error as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 4
    dummy = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, DUMMY_BYTES)
    cl.enqueue_fill_buffer(queue, dummy, np.zeros(1, np.uint8), 0, DUMMY_BYTES)
    aq = cl.kernel_arg_address_qualifier
    for name, locals_ in request["launches"].items():
        kernel = cl.Kernel(program, name)
        args = []
        for i in range(kernel.num_args):
            space = kernel.get_arg_info(i, cl.kernel_arg_info.ADDRESS_QUALIFIER)
            if space == aq.LOCAL:
                args.append(cl.LocalMemory(4096))
            elif space in (aq.GLOBAL, aq.CONSTANT):
                args.append(dummy)
            else:
                type_name = kernel.get_arg_info(i, cl.kernel_arg_info.TYPE_NAME)
                args.append(np.zeros(scalar_size(type_name), np.uint8))
        kernel.set_args(*args)
        for local in locals_:
            cl.enqueue_nd_range_kernel(queue, kernel, tuple(local), tuple(local))
            queue.finish()
    print("ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
