"""``hwbench train``: train a digits model or the translator with one backend's kernels."""

from __future__ import annotations

import argparse
from typing import Any

from hwbench.backends import get_backend
from hwbench.cli.options import make_console, say
from hwbench.models import began, digits


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="train a zoo model (mlp, lenet, autoencoder, translator, began) with a "
                      "backend's kernels")
    p.add_argument("--model", required=True,
                   help="mlp, lenet, autoencoder, translator or began")
    p.add_argument("--backend", default="numpy", help="backend whose kernels train it")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    p.add_argument("--epochs", type=int, default=None, help="default: the model's own")
    p.add_argument("--threads", type=int, default=None, help="backend threads")
    p.add_argument("--output", default=None,
                   help="weights file to write (default: results/weights/MODEL.npz)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = make_console()
    options = {} if args.threads is None else {"threads": args.threads}
    be = get_backend(args.backend, **options)
    say(console, f"training {args.model} on {be.full_name} (seed {args.seed}) ...")
    if args.model == "translator":
        from hwbench.cli.train_translator import run_translator

        return run_translator(args, be, console)
    trainer = began if args.model == "began" else digits
    params, report = trainer.train(be, args.model, seed=args.seed, epochs=args.epochs)
    output = args.output or f"results/weights/{args.model}.npz"
    meta = {"backend": be.full_name, "seed": report.seed, "epochs": report.epochs,
            report.metric_name: report.metric, "backend_info": be.info(),
            **getattr(report, "meta", {})}
    output = digits.save_params(output, args.model, params, meta, new=True)
    say(console, f"{args.model}: {report.epochs} epochs in {report.seconds:.1f} s "
                 f"({report.samples_per_second:,.0f} samples/s), final loss "
                 f"{report.losses[-1]:.4g}, test {report.metric_name} {report.metric:.4f}")
    for line in getattr(report, "notes", list)():
        say(console, line)
    say(console, f"weights: {output}")
    return 0
