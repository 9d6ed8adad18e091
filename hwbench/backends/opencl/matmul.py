"""MatMul on the opencl GEMM engine (``gemm.Gemm``) instead of one work-item per output.

- ``b`` without batch dimensions (or all of them 1; a Linear layer applied to N-D
  activations): ``a``'s batch folds into the rows, one GEMM of ``batches * m`` rows.
- ``a`` and ``b`` with the same batch dimensions (attention's products): one grouped
  GEMM, the batch as its groups, ``a`` and ``b`` read ``m*k`` and ``k*n`` apart.
- Any other broadcast of the batch dimensions: None (the caller's stride-table kernel).

On the packed (CPU) engine the grouped product is written straight into ``out``
(``Gemm.sgemm_out``), whatever ``n``.
"""

from __future__ import annotations

import math
from typing import Any

from hwbench.backends.opencl import small_gemm
from hwbench.backends.opencl.gemm import Gemm, Operand, OutputMap, check_int32
from hwbench.kernels import spec


def matmul_on_engine(engine: Gemm, p: spec.MatmulProblem, a: Any, b: Any, out: Any) -> bool:
    """Write ``a @ b`` into the device buffer ``out`` (contiguous ``p.output_shape``) with
    the GEMM engine; False when the batch broadcast is not one of the two forms above."""
    if math.prod(p.b_batch) == 1:
        rows = p.batches * p.m
        check_int32("matmul", rows * p.k, rows * p.n)
        small_gemm.gemm(engine, rows, p.n, p.k, Operand(a, p.k, 1), Operand(b, p.n, 1), out,
                        None)
        return True
    if p.a_batch != p.b_batch:
        return False
    groups, m, n, k = p.batches, p.m, p.n, p.k
    check_int32("matmul", groups * m * k, groups * k * n, groups * m * n)
    a_op = Operand(a, k, 1, m * k)
    b_op = Operand(b, n, 1, k * n)
    if engine.kernel != "sgemm_packed":
        engine.sgemm(m, n, k, a_op, b_op, out, n, groups=groups, c_batch=m * n)
        return True
    engine.sgemm_out(m, n, k, a_op, b_op, OutputMap(out, n, 0, n, m * n), groups=groups)
    return True
