"""opencl ÷ cpu speed per zoo model (issue 16's goal: geometric mean >= 0.6 on PoCL).

Both backends run each model in this process, one after the other, through
``hwbench.Session`` (the compiled plan), batch 1 at fp32: two warm-up runs, then the
median of ``--reps`` timed runs each. The speed ratio is cpu time ÷ opencl time; the
geometric mean is printed over the models given. ``--profile`` also prints the slowest
op types on each backend (``Session(profile=True)``: one synchronization per node).

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


def seconds(name: str, backend: str, reps: int, profile: bool) -> float:
    session = Session(name, backend, profile=profile)
    feeds = feeds_for(session)
    session.run(feeds)
    session.run(feeds)
    if profile:
        session.executor.op_seconds.clear()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        session.run(feeds)
        times.append(time.perf_counter() - start)
    if profile:
        ops = sorted(session.op_seconds.items(), key=lambda kv: -kv[1])[:8]
        print(f"  {name} {backend}: " + ", ".join(f"{op}={t / reps * 1e3:.1f} ms"
                                                   for op, t in ops), flush=True)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=ZOO)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    logs = []
    for name in args.models.split(","):
        ocl = seconds(name, "opencl", args.reps, args.profile)
        cpu = seconds(name, "cpu", args.reps, args.profile)
        logs.append(math.log(cpu / ocl))
        print(f"{name}: opencl {ocl * 1e3:.1f} ms, cpu {cpu * 1e3:.1f} ms, "
              f"opencl/cpu speed {cpu / ocl:.2f}", flush=True)
    print(f"geomean {math.exp(sum(logs) / len(logs)):.3f} over {len(logs)}")


if __name__ == "__main__":
    main()
