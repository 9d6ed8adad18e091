"""Gemm followed by an activation becomes one ``FusedGemm`` (issue 16): the executor runs
it as one ``gemm(..., activation=)`` call, which the cpu backend makes one oneDNN matmul
with the bias and the activation fused, and the others ``_gemm`` then the activation's
own kernel. Small models' dense layers (mlp, autoencoder, LeNet's classifier) are such
chains, and at their sizes each kernel call costs more than its arithmetic.

The activation is any of ``spec.ACTIVATIONS`` as ``activation_fusion.conv_activation``
finds it (the rules of ``passes.fuse_conv_epilogues``: every value absorbed has no other
reader and is no graph output). Run it only for the executor, after ``optimize`` (which
folds Gemm's alpha/beta): the node lives in domain ``com.hwbench``.
"""

from __future__ import annotations

from hwbench.graph.activation_fusion import ONNX_DOMAINS, conv_activation
from hwbench.graph.ir import FUSED_DOMAIN, FUSED_GEMM, Graph, Node


def fuse_gemm_activations(graph: Graph) -> Graph:
    """Gemm → activation as one ``FusedGemm`` node (in place): inputs (a, b, c or ""),
    attributes transA/transB and ``activation`` (its name), in the place of the last
    node it absorbs. A Gemm whose alpha or beta is not 1 is left alone."""
    consumers = graph.consumers()
    replace: dict[int, Node] = {}  # id of the last absorbed node -> the fused node
    removed: set[int] = set()
    taken: set[int] = set()
    for gemm in graph.nodes:
        if gemm.op_type != "Gemm" or gemm.domain not in ONNX_DOMAINS:
            continue
        if gemm.attrs.get("alpha", 1.0) != 1.0 or gemm.attrs.get("beta", 1.0) != 1.0:
            continue
        act = conv_activation(graph, gemm.outputs[0], consumers, taken)
        if act is None:
            continue
        name, absorbed, y = act
        attrs = {k: gemm.attrs[k] for k in ("transA", "transB") if k in gemm.attrs}
        attrs["activation"] = name
        inputs = [*gemm.inputs, "", ""][:3]
        replace[id(absorbed[-1])] = Node(FUSED_GEMM, inputs, [y], attrs, gemm.name,
                                         FUSED_DOMAIN)
        taken.update(id(n) for n in absorbed)
        removed.add(id(gemm))
        removed.update(id(n) for n in absorbed[:-1])
    graph.nodes = [replace.get(id(n), n) for n in graph.nodes if id(n) not in removed]
    return graph
