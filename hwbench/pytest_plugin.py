"""hwbench's pytest plugin (registered as ``hwbench`` through the ``pytest11`` entry point).

``hwbench_backend``: a fixture that runs a test once per backend hwbench knows — every
available backend and device flavour (``numpy``, ``cpu``, ``cpu:mkl``, ``opencl``, ...) —
and skips, with the backend's own reason, where one is absent::

    def test_my_layer(hwbench_backend):
        be = hwbench_backend
        y = be.to_numpy(be.gemm(be.asarray(a), be.asarray(b)))

``--hwbench-backends=numpy,cpu`` narrows the list. With pytest-benchmark, runs whose
benchmarks were recorded by ``hwbench.harness.benchmarking`` also store the reference
workload in the saved JSON (its ``hwbench`` field), for ``hwbench compare --normalized``.
"""

from __future__ import annotations

from typing import Any

import pytest

FIXTURE = "hwbench_backend"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hwbench")
    group.addoption("--hwbench-backends", default=None, metavar="LIST",
                    help="comma list of backends the hwbench_backend fixture runs over "
                         "(default: every registered backend and its device flavours)")


def backend_names(selection: str | None = None) -> list[str]:
    """Every backend name to run over: available ones with each device flavour beyond the
    default (``cpu``, ``cpu:mkl``), unavailable ones by their bare name (they will skip)."""
    from hwbench.backends import list_backends, parse_backend_name

    if selection:
        names = [part.strip() for part in selection.split(",") if part.strip()]
        for name in names:
            parse_backend_name(name)  # an unknown name is an error, not a skip
        return names
    names = []
    for row in list_backends():
        names.append(row.name)
        names.extend(f"{row.name}:{device}" for device in row.devices[1:])
    return names


def availability(name: str) -> tuple[bool, str]:
    """``(True, "")`` or ``(False, why)`` for a backend name with an optional device."""
    from hwbench.backends import backend_class, parse_backend_name

    base, device = parse_backend_name(name)
    try:
        cls = backend_class(base)
    except ImportError as exc:
        return False, f"{base} cannot be imported: {exc}"
    ok, why = cls.available()
    if ok and device is not None:
        why = cls.device_status(device)
        ok = not why
    return ok, why


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if FIXTURE in metafunc.fixturenames:
        names = backend_names(metafunc.config.getoption("hwbench_backends"))
        metafunc.parametrize(FIXTURE, names, ids=names, indirect=True, scope="session")


@pytest.fixture(scope="session")
def hwbench_backend(request: pytest.FixtureRequest) -> Any:
    """A backend instance (``hwbench.backends.get_backend(name)``), one per backend name;
    skipped with the reason where the backend cannot run here."""
    from hwbench.backends import get_backend

    name = getattr(request, "param", None)
    if name is None:  # requested indirectly, where pytest_generate_tests cannot see it
        pytest.skip("hwbench_backend is parametrized only when a test names it directly")
    ok, why = availability(name)
    if not ok:
        pytest.skip(f"backend {name} unavailable: {why}")
    return get_backend(name)


_RECORD = pytest.StashKey[dict]()


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list,
                                 output_json: dict) -> None:
    """Store the reference workload with benchmarks that hwbench recorded (once a run)."""
    if not any("hwbench" in (getattr(b, "extra_info", None) or {}) for b in benchmarks):
        return
    if _RECORD not in config.stash:
        from hwbench.harness.benchmarking import run_record

        config.stash[_RECORD] = run_record()
    output_json["hwbench"] = config.stash[_RECORD]
