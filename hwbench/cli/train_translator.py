"""``hwbench train --model translator``: the dates translator, trained and scored."""

from __future__ import annotations

import argparse
from typing import Any

from hwbench.backends.base import Backend
from hwbench.cli.options import say
from hwbench.models import translator


def run_translator(args: argparse.Namespace, be: Backend, console: Any) -> int:
    """Train, write the weights, and report loss, samples/s and the test metrics beside
    the copy-the-input and most-frequent-output baselines."""
    def progress(epoch: int, loss: float) -> None:
        say(console, f"  epoch {epoch}: loss {loss:.4g}")

    params, report = translator.train(be, seed=args.seed, epochs=args.epochs,
                                      progress=progress)
    s = report.scores
    assert s is not None  # train() scores the test split unless told not to
    output = args.output or "results/weights/translator.npz"
    meta = {"backend": be.full_name, "seed": report.seed, "epochs": report.epochs,
            "exact_match": s.exact_match, "cer": s.cer, "backend_info": be.info()}
    output = translator.save_params(output, params, meta, new=True)
    say(console, f"translator: {report.epochs} epochs in {report.seconds:.1f} s "
                 f"({report.samples_per_second:,.0f} samples/s), final loss "
                 f"{report.losses[-1]:.4g}")
    say(console, f"test ({s.sentences} dates): exact match {s.exact_match:.4f}, CER "
                 f"{s.cer:.4f}; baselines: copy the input {s.copy_exact_match:.4f} / "
                 f"{s.copy_cer:.4f}, most frequent output {s.frequent_exact_match:.4f} / "
                 f"{s.frequent_cer:.4f}")
    say(console, f"weights: {output}")
    return 0
