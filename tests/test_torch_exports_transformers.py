"""Transformers written with ``torch.nn`` (``torch_transformers``: a BERT-style encoder, a
GPT-style decoder with rotary positions, ``nn.MultiheadAttention`` and
``nn.TransformerEncoderLayer`` as people use them, a RoBERTa-style encoder), exported
by ``torch.onnx.export`` with both exporters, load in hwbench, run on every backend and
agree with onnxruntime on the same file: within 1e-4 of the largest logit and the same
top-1 token per position.
The multihead_attention model computes its key padding mask at run time (Equal on
int64), the RoBERTa-style one its position ids (CumSum, Mul, Add on int64). A 32-token
sequence and small widths; each model is exported once per exporter."""

from __future__ import annotations

import numpy as np
import pytest
from torch_exports_common import BACKENDS, EXPORTERS, check_against_onnxruntime, export

torch = pytest.importorskip("torch", reason="needs PyTorch (pip install '.[peers]')")
pytest.importorskip("onnxruntime", reason="needs onnxruntime (pip install '.[test]')")
import torch_transformers as tt  # noqa: E402  (imports torch)

SEQ, PADDED = 32, 5  # the last PADDED positions are padding where a mask is taken

# name -> (model class, whether it takes attention_mask)
MODELS = {
    "bert_encoder": (tt.BertEncoder, True),
    "roberta_encoder": (tt.RobertaEncoder, True),
    "gpt_decoder": (tt.GptDecoder, False),
    "multihead_attention": (tt.MhaClassifier, True),
    "transformer_encoder_layer": (tt.EncoderLayerStack, False),
}
SKIPS: dict[tuple[str, str], str] = {}  # (model, exporter) -> why it is skipped


def _feeds(masked: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {"input_ids": rng.integers(0, tt.VOCAB, (1, SEQ)).astype(np.int64)}
    if masked:
        mask = np.ones((1, SEQ), np.int64)
        mask[:, -PADDED:] = 0
        feeds["attention_mask"] = mask
    return feeds


@pytest.fixture(scope="module", params=[(n, e) for n in MODELS for e in EXPORTERS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def exported(request, tmp_path_factory) -> tuple[str, dict[str, np.ndarray]]:
    name, exporter = request.param
    if (name, exporter) in SKIPS:
        pytest.skip(SKIPS[name, exporter])
    cls, masked = MODELS[name]
    torch.manual_seed(0)
    model = cls().eval()
    feeds = _feeds(masked)
    args = tuple(torch.from_numpy(v) for v in feeds.values())
    path = str(tmp_path_factory.mktemp("exports") / f"{name}_{exporter}.onnx")
    return export(torch, model, args, path, exporter, list(feeds)), feeds


@pytest.mark.parametrize("backend", BACKENDS)
def test_transformer_export_agrees_with_onnxruntime(exported, backend):
    path, feeds = exported
    check_against_onnxruntime(path, feeds, backend)
