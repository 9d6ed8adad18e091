"""Today's architectures, built by hwbench in code with seeded random weights.

Nothing is downloaded or committed: each builder writes the graph ``torch.onnx.export``
(opset 17) would write for the torchvision / HuggingFace definition, with weights drawn
from ``seed``. ``GENERATED`` maps a zoo name to its builder, called as
``build(batch=None, seed=0, **config)`` -> ``onnx.ModelProto`` (``batch=None``: a symbolic
``batch`` dimension, and for the transformers a symbolic ``sequence`` unless
``sequence=`` fixes it). The builder modules load on first use (they import onnx).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# name -> (module, function) under hwbench.models.generated
_BUILDERS: dict[str, tuple[str, str]] = {
    "bert_base": ("transformers", "bert"),
    "gpt2": ("transformers", "gpt2"),
    "vit_b16": ("transformers", "vit"),
    "mobilenet_v2": ("mobilenets", "mobilenet_v2"),
    "mobilenet_v3_large": ("mobilenets", "mobilenet_v3_large"),
    "efficientnet_b0": ("efficientnet", "efficientnet_b0"),
    "convnext_tiny": ("convnext", "convnext_tiny"),
}

# The sizes ``load_model`` gives the symbolic dimensions other than batch by default.
DEFAULT_DIMS: dict[str, dict[str, int]] = {
    "bert_base": {"sequence": 128},
    "gpt2": {"sequence": 128},
}


def _lazy(module: str, function: str) -> Callable[..., Any]:
    def build(batch: int | None = None, seed: int = 0, **config: Any) -> Any:
        mod = importlib.import_module(f"hwbench.models.generated.{module}")
        return getattr(mod, function)(batch, seed, **config)

    build.__name__ = function
    build.__doc__ = f"hwbench.models.generated.{module}.{function}, loaded on first use."
    return build


GENERATED: dict[str, Callable[..., Any]] = {
    name: _lazy(module, function) for name, (module, function) in _BUILDERS.items()}

__all__ = ["GENERATED", "DEFAULT_DIMS"]
