"""The onnx wheel's RNN, GRU and LSTM node tests through every backend's ``rnn`` kernel,
every output the node names compared (an omitted one, '', is not computed for the test).

Included: every test_rnn_*, test_simple_rnn_*, test_gru_* and test_lstm_* case (all are
opset 22, float32). Left out: none.
"""

from __future__ import annotations

import numpy as np
import pytest
from node_cases import listed_node, outputs_beside_expected
from tolerances import assert_node_close

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")

from hwbench.graph.ir import Node  # noqa: E402
from hwbench.graph.onnx_import import load_onnx  # noqa: E402
from hwbench.graph.ops.rnn import INPUTS, _attrs  # noqa: E402

NODE_TESTS = {
    "RNN": ["test_simple_rnn_defaults", "test_simple_rnn_with_initial_bias",
            "test_rnn_seq_length", "test_simple_rnn_batchwise", "test_simple_rnn_reverse",
            "test_simple_rnn_bidirectional"],
    "GRU": ["test_gru_defaults", "test_gru_with_initial_bias", "test_gru_seq_length",
            "test_gru_batchwise", "test_gru_reverse", "test_gru_bidirectional"],
    "LSTM": ["test_lstm_defaults", "test_lstm_with_initial_bias", "test_lstm_with_peepholes",
             "test_lstm_batchwise", "test_lstm_reverse", "test_lstm_bidirectional"],
}
ALL_NAMES = [name for names in NODE_TESTS.values() for name in names]


def run_node(be, node: Node, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The node's named inputs by position, its attributes as the graph layer reads them."""
    named = iter(inputs)
    args = [next(named) if name else None for name in node.inputs]
    args += [None] * (len(INPUTS) - len(args))
    dev = [None if v is None or i == 4 else be.asarray(v) for i, v in enumerate(args)]
    outs = be.rnn(*dev[:4], args[4], *dev[5:], **_attrs(node))
    return [be.to_numpy(o) for o, name in zip(outs, node.outputs, strict=False) if name]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_onnx_node(backend, node_tests, name):
    case = node_tests[name]
    node = listed_node(case, NODE_TESTS, name, load_onnx(case.model).nodes[0])
    for got, want in outputs_beside_expected(case, lambda inputs: run_node(backend, node, inputs)):
        assert_node_close(backend, node.op_type, got, want, case.rtol, case.atol)
