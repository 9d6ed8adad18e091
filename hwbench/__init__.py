"""hwbench: deep-learning kernels and models on many kinds of hardware, measured side by side."""

from hwbench import datasets
from hwbench.backends import get_backend, list_backends
from hwbench.errors import HwbenchError
from hwbench.models import Model, Session, load_model, quantize_model
from hwbench.version import __version__

__all__ = ["get_backend", "list_backends", "HwbenchError", "load_model", "Model", "Session",
           "quantize_model", "datasets", "__version__"]
