"""Graph and Op layers: the op registry (``ops``: one definition per op type), ONNX
import, passes (BatchNorm folding, constant folding, batch rewriting, Conv+Add+Relu
fusion), static shape inference, int8 quantization, FLOP/byte statistics, and the
executor that runs a graph on one backend. Nothing here imports the model layer or
anything above it."""

from hwbench.graph.executor import Executor
from hwbench.graph.ir import Graph, Node, ValueInfo
from hwbench.graph.onnx_import import load_onnx, to_onnx
from hwbench.graph.passes import fold_constants, fuse_conv_epilogues, optimize, rewrite_batch
from hwbench.graph.shape_inference import infer_shapes

__all__ = ["Executor", "Graph", "Node", "ValueInfo", "load_onnx", "to_onnx", "optimize",
           "fold_constants", "fuse_conv_epilogues", "rewrite_batch", "infer_shapes"]
