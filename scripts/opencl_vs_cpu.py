"""opencl ÷ cpu speed per zoo model (issue 16's goal: geometric mean >= 0.6 on PoCL).

Both backends run each model in this process through ``hwbench.Session`` (the compiled
plan), batch 1 at fp32: two warm-up runs each, then ``--reps`` timed runs each, taking
turns (a busy machine's load swings reach both alike), and the median of each (``--best``:
the fastest). The speed ratio is cpu time ÷ opencl time; the geometric mean is printed
over the models given. ``--profile`` also prints the slowest op types on each backend
(``Session(profile=True)``: one synchronization per node).

    python scripts/opencl_vs_cpu.py --models resnet50,convnext_tiny --reps 5
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from hwbench.models.session import Session

ZOO = ("alexnet,zfnet512,vgg19,resnet50,squeezenet,inception_v1,inception_v2,densenet121,"
       "shufflenet,mobilenet_v2,mobilenet_v3_large,efficientnet_b0,convnext_tiny,bert_base,"
       "gpt2,vit_b16")


def feeds_for(session: Session) -> dict[str, np.ndarray]:
    feeds = {}
    for node in session.get_inputs():
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in node.shape)
        if "int" in str(node.type):  # token ids
            feeds[node.name] = np.ones(shape, np.int64)
        else:
            feeds[node.name] = np.random.default_rng(0).standard_normal(shape).astype(
                np.float32)
    return feeds


def seconds(name: str, reps: int, profile: bool, best: bool = False) -> tuple[float, float]:
    """Median (``best``: fastest) seconds per run on opencl and on cpu. The timed runs
    alternate between the two backends, so that a busy machine's load swings reach both
    alike."""
    sessions = [Session(name, backend, profile=profile) for backend in ("opencl", "cpu")]
    feeds = feeds_for(sessions[0])
    for session in sessions:
        session.run(feeds)
        session.run(feeds)
        if profile:
            session.executor.op_seconds.clear()
    times: list[list[float]] = [[], []]
    for _ in range(reps):
        for session, spent in zip(sessions, times, strict=True):
            start = time.perf_counter()
            session.run(feeds)
            spent.append(time.perf_counter() - start)
    if profile:
        for session, backend in zip(sessions, ("opencl", "cpu"), strict=True):
            ops = sorted(session.op_seconds.items(), key=lambda kv: -kv[1])[:8]
            print(f"  {name} {backend}: " + ", ".join(f"{op}={t / reps * 1e3:.1f} ms"
                                                       for op, t in ops), flush=True)
    stat = np.min if best else np.median
    return float(stat(times[0])), float(stat(times[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=ZOO)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--best", action="store_true",
                        help="each backend's fastest run instead of the median (on a busy "
                             "machine: the runs the other load disturbed least)")
    args = parser.parse_args()
    logs = []
    for name in args.models.split(","):
        ocl, cpu = seconds(name, args.reps, args.profile, args.best)
        logs.append(math.log(cpu / ocl))
        print(f"{name}: opencl {ocl * 1e3:.1f} ms, cpu {cpu * 1e3:.1f} ms, "
              f"opencl/cpu speed {cpu / ocl:.2f}", flush=True)
    print(f"geomean {math.exp(sum(logs) / len(logs)):.3f} over {len(logs)}")


if __name__ == "__main__":
    main()
