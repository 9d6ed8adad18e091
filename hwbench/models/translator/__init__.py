"""The translator: human-written dates into ISO 8601 by an LSTM encoder-decoder with
attention, trained by ``hwbench train --model translator`` with a backend's kernels
(``model`` the network, ``ops`` its kernels, ``training`` the optimizer and metrics,
``storage`` the weights files)."""

from hwbench.models.translator.model import init_params, loss_and_gradients
from hwbench.models.translator.ops import Float64Ops, KernelOps
from hwbench.models.translator.storage import SHIPPED, load_params, save_params
from hwbench.models.translator.training import (
    Config,
    Scores,
    TrainReport,
    edit_distance,
    evaluate,
    train,
    translate,
)

__all__ = ["Config", "Float64Ops", "KernelOps", "SHIPPED", "Scores", "TrainReport",
           "edit_distance", "evaluate", "init_params", "load_params", "loss_and_gradients",
           "save_params", "train", "translate"]
