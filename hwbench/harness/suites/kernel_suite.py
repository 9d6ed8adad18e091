"""The kernel suite behind ``hwbench kernels``: every op × shape × backend, timed and checked.

For each case the inputs are drawn once from a seeded generator, the float64 (or exact
integer) reference is computed once, and every backend is timed with the shared
``measure`` loop after its result is compared with the reference. Rows carry FLOP and
byte counts from the kernel layer's problem objects, so every report counts work alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwbench.backends.base import Backend
from hwbench.errors import ArgumentError, HwbenchError
from hwbench.harness.running.machine_state import Monitor
from hwbench.harness.running.row_status import failure_fields
from hwbench.harness.running.timing import measure
from hwbench.kernels import reference, spec
from hwbench.kernels.shapes import ConvShape, GemmShape, get_problem_set

OPS = ("gemm", "conv2d", "sigmoid", "sigmoid_backward", "gemm_int8", "qgemm")
ELEMENTWISE_SIZES = {"small": (1 << 16, 1 << 20), "headline": (1 << 24,)}
DEFAULT_ELEMENTWISE_SIZES = (1 << 20, 1 << 24)
INT8_ZERO_POINTS = (128, 0)  # a typical uint8 activation and symmetric int8 weights
QGEMM_SCALES = (0.02, 0.01, 0.5)  # a_scale, b_scale, y_scale


@dataclass
class Case:
    """One op on one shape: host inputs, the reference, and the work it represents."""

    op: str
    name: str
    params: dict[str, Any]
    inputs: dict[str, np.ndarray]
    static: dict[str, Any]  # non-array arguments (stride, zero points, ...)
    flops: int
    bytes: int
    exact: bool = False
    _reference: np.ndarray | None = field(default=None, repr=False)
    reference_fn: Callable[[], np.ndarray] | None = field(default=None, repr=False)

    def bind(self, backend: Backend) -> Callable[[], Any]:
        """A no-argument call of this case's kernel on ``backend``'s device copies."""
        device = {k: backend.asarray(v) for k, v in self.inputs.items()}
        kernel = getattr(backend, self.op)
        if self.op == "qgemm":  # ONNX QLinearMatMul's argument order
            s = self.static
            args = (device["a"], s["a_scale"], s["a_zero_point"], device["b"], s["b_scale"],
                    s["b_zero_point"], s["y_scale"], s["y_zero_point"])
            return lambda: kernel(*args)
        return lambda: kernel(**device, **self.static)

    @property
    def reference(self) -> np.ndarray:
        if self._reference is None:
            assert self.reference_fn is not None
            self._reference = self.reference_fn()
        return self._reference


def _gemm_case(shape: GemmShape, rng: np.random.Generator) -> Case:
    a = rng.uniform(-1, 1, shape.a_shape).astype(np.float32)
    b = rng.uniform(-1, 1, shape.b_shape).astype(np.float32)
    static = {"trans_a": shape.trans_a, "trans_b": shape.trans_b}
    problem = spec.check_gemm(a, b, None, **static)
    return Case("gemm", shape.name, {"m": shape.m, "n": shape.n, "k": shape.k, **static},
                {"a": a, "b": b}, static, problem.flops, problem.bytes,
                reference_fn=lambda: reference.gemm(a, b, None, **static))


def _int8_case(op: str, shape: GemmShape, rng: np.random.Generator) -> Case:
    m, n, k = shape.m, shape.n, shape.k
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    za, zb = np.uint8(INT8_ZERO_POINTS[0]), np.int8(INT8_ZERO_POINTS[1])
    problem, _, _ = spec.check_gemm_int8(a, b, za, zb)
    params = {"m": m, "n": n, "k": k}
    name = CaseSpec(op, shape).name
    if op == "gemm_int8":
        return Case(op, name, params, {"a": a, "b": b}, {"a_zero_point": za, "b_zero_point": zb},
                    problem.flops, problem.bytes, exact=True,
                    reference_fn=lambda: reference.gemm_int8(a, b, za, zb))
    sa, sb, sy = (np.float32(s) for s in QGEMM_SCALES)
    zy = np.uint8(128)
    static = {"a_scale": sa, "a_zero_point": za, "b_scale": sb, "b_zero_point": zb,
              "y_scale": sy, "y_zero_point": zy}
    return Case(op, name, params, {"a": a, "b": b}, static, problem.flops,
                problem.bytes - 3 * m * n, exact=True,
                reference_fn=lambda: reference.qgemm(a, sa, za, b, sb, zb, sy, zy))


def _conv_case(shape: ConvShape, rng: np.random.Generator) -> Case:
    x = rng.uniform(-1, 1, shape.input_shape).astype(np.float32)
    w = rng.uniform(-1, 1, shape.weight_shape).astype(np.float32)
    static = {"stride": shape.stride, "padding": shape.padding, "dilation": shape.dilation,
              "groups": shape.groups}
    problem = spec.check_conv2d(x, w, None, **static)
    params = {"n": shape.n, "c": shape.c, "h": shape.h, "w": shape.w, "k": shape.k,
              "r": shape.r, "s": shape.s, **static}
    return Case("conv2d", shape.name, params, {"x": x, "w": w}, static, problem.flops,
                problem.bytes, reference_fn=lambda: reference.conv2d(x, w, None, **static))


def _elementwise_case(op: str, size: int, rng: np.random.Generator) -> Case:
    x = rng.uniform(-8, 8, size).astype(np.float32)
    if op == "sigmoid":
        problem = spec.check_unary(x, "x", op)
        return Case(op, f"{op}_{size}", {"size": size}, {"x": x}, {}, problem.flops,
                    problem.bytes, reference_fn=lambda: reference.sigmoid(x))
    y = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    dy = rng.uniform(-1, 1, size).astype(np.float32)
    problem = spec.check_sigmoid_backward(y, dy)
    return Case(op, f"{op}_{size}", {"size": size}, {"y": y, "dy": dy}, {}, problem.flops,
                problem.bytes, reference_fn=lambda: reference.sigmoid_backward(y, dy))


@dataclass(frozen=True)
class CaseSpec:
    """What one case is, without its data: an op and a shape (or elementwise size)."""

    op: str
    shape: GemmShape | ConvShape | int

    @property
    def name(self) -> str:
        if isinstance(self.shape, int):
            return f"{self.op}_{self.shape}"
        if self.op in ("gemm_int8", "qgemm") and self.shape.name.startswith("gemm"):
            return self.shape.name.replace("gemm", self.op, 1)
        return self.shape.name


def check_ops(ops: tuple[str, ...]) -> None:
    unknown = [op for op in ops if op not in OPS]
    if unknown or not ops:
        raise ArgumentError(f"argument 'op': unknown op(s) {unknown}; known: {', '.join(OPS)}")


def plan(ops: tuple[str, ...] = OPS, shapes: str = "small", batch: int = 1) -> list[CaseSpec]:
    """Every case of the suite, in order: cheap, so parent and workers agree on indices."""
    check_ops(ops)
    gemms, convs = get_problem_set(shapes, batch)
    sizes = ELEMENTWISE_SIZES.get(shapes, DEFAULT_ELEMENTWISE_SIZES)
    out: list[CaseSpec] = []
    for op in ops:
        chosen = gemms if op in ("gemm", "gemm_int8", "qgemm") else (
            convs if op == "conv2d" else sizes)
        out.extend(CaseSpec(op, shape) for shape in chosen)
    return out


def make_case(spec: CaseSpec, seed: int = 0, index: int = 0) -> Case:
    """The case's inputs, drawn from a generator seeded by (seed, index) alone."""
    rng = np.random.default_rng([seed, index])
    if spec.op == "gemm":
        return _gemm_case(spec.shape, rng)
    if spec.op in ("gemm_int8", "qgemm"):
        return _int8_case(spec.op, spec.shape, rng)
    if spec.op == "conv2d":
        return _conv_case(spec.shape, rng)
    return _elementwise_case(spec.op, spec.shape, rng)


def count_cases(ops: tuple[str, ...], shapes: str, batch: int = 1) -> int:
    return len(plan(ops, shapes, batch))


def relative_error(result: np.ndarray, ref: np.ndarray) -> float:
    """max |result − ref| / max |ref| (the error measure of every report)."""
    diff = np.abs(np.asarray(result, dtype=np.float64) - ref)
    return float(diff.max() / (float(np.max(np.abs(ref))) or 1.0))


def accuracy(result: np.ndarray, ref: np.ndarray, exact: bool) -> dict[str, Any]:
    """Max relative error (normalised by the reference's largest magnitude), or mismatches."""
    if result.shape != ref.shape:
        return {"error": f"shape {result.shape} != reference {ref.shape}"}
    if exact:
        mismatches = int(np.count_nonzero(result.astype(np.int64) != ref.astype(np.int64)))
        return {"mismatches": mismatches, "rel_error": 0.0 if mismatches == 0 else float(
            np.max(np.abs(result.astype(np.int64) - ref)) / max(1, np.max(np.abs(ref))))}
    max_abs = float(np.max(np.abs(result.astype(np.float64) - ref)))
    return {"rel_error": relative_error(result, ref), "max_abs_error": max_abs}


# What a kernels row's ``check_finite`` says: inputs screened for NaN/inf once, by the
# checked call before timing, and never inside the timed loop; or not screened at all.
SCREEN_OUTSIDE_TIMING = "once, outside the timing"
SCREEN_OFF = "off"


def screen_mode(backend: Backend) -> str:
    return SCREEN_OUTSIDE_TIMING if backend.check_finite else SCREEN_OFF


@contextmanager
def screening_off(backend: Backend) -> Iterator[None]:
    """Turn ``backend``'s NaN/inf screen off for the block (and that of any backend it
    wraps, as a peer wraps ``opencl``), so that no backend's timing includes screening:
    some screen every call, some once per array, and the timed loop would charge them
    differently for the same kernel."""
    owners = [backend] + [v for v in vars(backend).values() if isinstance(v, Backend)]
    saved = [(owner, owner.check_finite) for owner in owners]
    try:
        for owner in owners:
            owner.check_finite = False
        yield
    finally:
        for owner, value in saved:
            owner.check_finite = value


def row_machine_state(state: dict[str, Any]) -> dict[str, Any]:
    """What a row keeps of the machine's state during its timing (the run keeps the rest)."""
    return {key: state.get(key) for key in ("busy", "others_share", "steal_share")}


def row_flags(timing_flags: list[str], machine: dict[str, Any]) -> list[str]:
    """A row's ``flags``: its samples' (``timing.sample_flags``), plus ``"busy-machine"``
    when other processes took a large share of the CPU while it was measured."""
    return (["busy-machine"] if machine.get("busy") else []) + list(timing_flags)


def run_case(backend: Backend, case: Case, *, repeats: int = 10, min_time: float = 0.2,
             max_time: float = 5.0) -> dict[str, Any]:
    """Check one backend on one case against the reference, then time it.

    The checked call screens the inputs (when the backend screens at all); the timed
    calls run with the screen off, on every backend alike (``screening_off``).
    """
    row: dict[str, Any] = {"backend": backend.full_name, "op": case.op, "case": case.name,
                           "params": case.params, "flops": case.flops, "bytes": case.bytes,
                           "check_finite": screen_mode(backend)}
    try:
        call = case.bind(backend)
        result = backend.to_numpy(call())
        backend.synchronize()
        row.update(accuracy(result, case.reference, case.exact))
        with screening_off(backend), Monitor() as monitor:
            timing = measure(call, backend.synchronize, repeats=repeats, min_time=min_time,
                             max_time=max_time)
    except HwbenchError as exc:
        row.update(failure_fields(exc))
        return row
    median = timing.median
    row.update(status="ok", timing=timing.to_dict(), seconds=median,
               gflops=case.flops / median / 1e9, gbytes_per_s=case.bytes / median / 1e9,
               machine_state=row_machine_state(monitor.state),
               flags=row_flags(timing.flags, monitor.state))
    return row
