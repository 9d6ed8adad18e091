"""Which symbolic input dimensions a model has, and so which ``--dim NAME=N`` apply to it.

``hwbench run --model vit_b16,gpt2 --dim sequence=32`` sizes GPT-2's ``sequence`` and
leaves ViT (which has none) alone; a ``--dim`` that no selected model has is refused, as a
typo would otherwise pass silently (``model_dims``).
"""

from __future__ import annotations

import functools

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.onnx_inputs import input_symbols
from hwbench.models import digits, zoo
from hwbench.models.generated import DEFAULT_DIMS, GENERATED


@functools.lru_cache(maxsize=64)
def model_symbols(name_or_path: str) -> frozenset[str]:
    """The symbolic dimension names of a model's inputs, as ``load_model`` would see them:
    none for the digits models (exported at a static batch), ``batch`` and the
    ``DEFAULT_DIMS`` names for the generated ones, and what the file says otherwise. A
    file that cannot be read (a zoo file not downloaded, a malformed one) has none here:
    loading it fails its own rows, with the reason, not the whole run."""
    if name_or_path in digits.ARCHITECTURES or name_or_path in ("translator", "began"):
        return frozenset()  # (the task models' sizes are their suites', not the user's)
    if name_or_path in GENERATED:
        return frozenset({"batch", *DEFAULT_DIMS.get(name_or_path, {})})
    path = zoo.model_path(name_or_path) if name_or_path in zoo.ZOO else name_or_path
    try:
        return input_symbols(path)
    except (ArgumentError, UnsupportedError):
        return frozenset()


def model_dims(models: list[str], dims: dict[str, int]) -> dict[str, dict[str, int]]:
    """Each model's share of ``dims`` (symbol -> size): the names its inputs have, over the
    generated models' defaults (``DEFAULT_DIMS``). A name that no model in ``models`` has
    raises ``ArgumentError`` naming ``--dim`` and each model's symbols."""
    symbols = {model: model_symbols(model) for model in models}
    unknown = sorted(set(dims) - set().union(*symbols.values()))
    if unknown:
        have = "; ".join(f"{m}: {', '.join(sorted(s)) or 'none'}" for m, s in symbols.items())
        raise ArgumentError(f"argument 'dims' (CLI: --dim): {', '.join(map(repr, unknown))} "
                            f"is no symbolic dimension of any selected model ({have})")
    return {model: {**DEFAULT_DIMS.get(model, {}),
                    **{k: v for k, v in dims.items() if k in symbols[model]}}
            for model in models}
