"""How the workers' OpenMP threads wait between parallel regions: ``--omp-wait``.

Why a choice: at batch 1 most convolutions are small, and under libgomp's passive policy
each parallel region wakes sleeping threads (tens of µs), so hwbench keeps problems under
32 MFLOP on one thread where onnxruntime's spinning pool splits them. Letting libgomp spin
a bounded while (``GOMP_SPINCOUNT=30000``, ~0.3 ms) made ``cpu`` 1.0–1.7x faster at batch 1
on the quiet 2-core VM (results/amd-epyc-zen4-2core/omp-spin-20261204.md); beside a busy
neighbour the same setting made it 5–10x slower (docs/results.md), where sleeping threads
stay within ~2x of idle.

- ``passive``: ``OMP_WAIT_POLICY=PASSIVE``: threads sleep at once. Right on a shared machine.
- ``active``: ``GOMP_SPINCOUNT=30000``: threads spin ~0.3 ms before sleeping, so a model's
  back-to-back regions find them awake. Right on a dedicated, idle machine.
- ``auto`` (the default): the user's own ``OMP_WAIT_POLICY``/``GOMP_SPINCOUNT`` when set;
  else ``active`` when the machine is quiet for ``PROBE_SECONDS`` before the run (others'
  CPU share under ``QUIET_OTHERS_SHARE``, steal under ``QUIET_STEAL_SHARE``: half the busy
  thresholds of ``machine_state``, since spinning suffers first), else ``passive``.
  A machine that turns busy later still gets its rows flagged ``busy-machine``.

The workers get the resolved policy in their environment before they load libgomp
(``isolation.worker_env``); the result's ``environment.openmp_wait`` and every row's
``omp_wait`` record it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from hwbench.errors import ArgumentError
from hwbench.harness.running import machine_state

CHOICES = ("auto", "passive", "active")
KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
SETTINGS = {"passive": {"OMP_WAIT_POLICY": "PASSIVE"}, "active": {"GOMP_SPINCOUNT": "30000"}}
PROBE_SECONDS = 0.3
QUIET_OTHERS_SHARE = machine_state.BUSY_OTHERS_SHARE / 2
QUIET_STEAL_SHARE = machine_state.BUSY_STEAL_SHARE / 2


def check_choice(choice: str) -> str:
    if choice not in CHOICES:
        raise ArgumentError(f"argument '--omp-wait' must be one of {', '.join(CHOICES)}, "
                            f"got {choice!r}")
    return choice


def users_own(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The wait variables the user set in ``env`` (default: this process's environment,
    less what hwbench itself put there when it loaded libgomp here)."""
    from hwbench.backends.cpu.onednn import SET_IN_THIS_PROCESS

    if env is not None:
        return {k: env[k] for k in KEYS if k in env}
    return {k: os.environ[k] for k in KEYS
            if k in os.environ and SET_IN_THIS_PROCESS.get(k) != os.environ[k]}


def user_policy(env: Mapping[str, str]) -> str | None:
    """``active``/``passive`` as libgomp reads the user's own variables; None if unset."""
    from hwbench.backends.cpu.onednn import spins  # libgomp's rule, kept in one place

    if not any(key in env for key in KEYS):
        return None
    return "active" if spins(env) else "passive"


def probe_quiet(seconds: float = PROBE_SECONDS) -> tuple[bool, dict[str, Any]]:
    """Whether others left the cores alone for ``seconds`` now, and what was measured."""
    with machine_state.Monitor() as monitor:
        time.sleep(seconds)
    state = monitor.state
    others, steal = state.get("others_share"), state.get("steal_share")
    quiet = (others is not None and others < QUIET_OTHERS_SHARE
             and (steal is None or steal < QUIET_STEAL_SHARE))
    return quiet, {"others_share": others, "steal_share": steal, "seconds": seconds}


def resolve(choice: str = "auto", env: Mapping[str, str] | None = None,
            probe: Callable[[], tuple[bool, dict[str, Any]]] = probe_quiet
            ) -> dict[str, Any]:
    """The policy the workers get: ``{"choice", "policy", "why", "env"}`` (``env``: the
    variables set in their environment). An explicit ``passive``/``active`` overrides the
    user's variables; ``auto`` keeps them."""
    env = users_own(env)
    check_choice(choice)
    users = user_policy(env)
    if choice != "auto":
        policy, why = choice, "--omp-wait " + choice
        variables = dict(SETTINGS[choice])
    elif users is not None:
        policy, variables = users, dict(env)
        why = "the user's " + ", ".join(f"{k}={v}" for k, v in env.items())
    else:
        quiet, measured = probe()
        policy = "active" if quiet else "passive"
        shares = ", ".join(f"{k} {v:.2f}" for k, v in measured.items()
                           if k.endswith("share") and isinstance(v, float))
        why = (f"auto: the machine was {'quiet' if quiet else 'busy'} before the run "
               f"({shares or 'not measurable'}; quiet below others_share "
               f"{QUIET_OTHERS_SHARE:g}, steal_share {QUIET_STEAL_SHARE:g})")
        variables = dict(SETTINGS[policy])
    return {"choice": choice, "policy": policy, "why": why, "env": variables}


def default(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What workers started without a choice get (``apply(env, None)``), as ``resolve``
    says it: passive unless the user set variables of their own."""
    from hwbench.backends.cpu.onednn import set_openmp_wait_policy

    env = users_own(env)
    variables = set_openmp_wait_policy(dict(env))
    return {"choice": None, "policy": user_policy(variables), "env": variables,
            "why": "the user's variables" if env else "default"}


def apply(env: MutableMapping[str, str], policy: Mapping[str, Any] | None) -> None:
    """Put a resolved policy's variables into a worker's ``env``, replacing the others;
    None: the default (``onednn.set_openmp_wait_policy``: passive unless the user set one)."""
    from hwbench.backends.cpu.onednn import set_openmp_wait_policy

    if policy is None:
        set_openmp_wait_policy(env)
        return
    for key in KEYS:
        env.pop(key, None)
    env.update(policy["env"])


def recorded_policy(record: Any) -> str:
    """``active``/``passive`` from a results file's ``environment.openmp_wait`` (this
    module's record, or the bare variables older files hold); ``?`` if it says neither."""
    if not isinstance(record, dict):
        return "?"
    if record.get("policy") in ("active", "passive"):
        return record["policy"]
    variables = {k: str(v) for k, v in record.items() if k in KEYS}
    return user_policy(variables) or "?"


def seen() -> dict[str, str]:
    """The wait variables of this process (a worker's: what its libgomp read)."""
    return {key: os.environ[key] for key in KEYS if key in os.environ}
