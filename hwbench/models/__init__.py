"""Model and Task layers: the model zoo, ``load_model`` and ``Session``."""

from hwbench.models.model import Model, load_model
from hwbench.models.quantization import quantize_model
from hwbench.models.session import NodeArg, Session
from hwbench.models.zoo import ZOO, randomize_weights

__all__ = ["Model", "load_model", "quantize_model", "Session", "NodeArg", "ZOO",
           "randomize_weights"]
