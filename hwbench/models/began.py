"""BEGAN (Berthelot et al. 2017) on the 8×8 digits, trained with a backend's own kernels.

The generator maps ``z`` (uniform in [-1, 1]) through a dense layer to a 4×4 map, a 3×3
conv, nearest ×2 upsampling (``resize``), two 3×3 convs and a sigmoid to an 8×8 image. The
discriminator is an autoencoder, as in the paper: an encoder (conv, stride-2 conv,
dense to ``embedding`` values) and a decoder shaped like the generator, linear at the end.
Its loss on an image is the mean L1 reconstruction error ``L(v) = mean |v − D(v)|``:

- ``L_D = L(x) − k_t · L(G(z))``, ``L_G = L(G(z))``,
- ``k_{t+1} = clip(k_t + λ_k (γ L(x) − L(G(z))), 0, 1)`` (the balance term),
- ``M_global = L(x) + |γ L(x) − L(G(z))|`` (the convergence measure, recorded per epoch).

Layers reuse ``digits.layer_forward``/``layer_backward`` (GEMMs with transpose flags,
conv through im2col/col2im, ELU); the upsampling's backward is ``avg_pool2d`` × 4. Adam
(the paper's optimiser) runs on the host. The same seed on the same backend gives the
same weights; the shipped ``weights/began.npz`` is ``hwbench train --model began``'s
output on ``numpy`` with seed 0.
"""

from __future__ import annotations

import contextlib
import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.backends.base import Backend
from hwbench.datasets import digits
from hwbench.errors import ArgumentError, ResultsError
from hwbench.models.digits import (
    WEIGHTS_DIR,
    Layer,
    Params,
    TrainReport,
    init_layers,
    layer_backward,
    layer_forward,
    save_params,
)


@dataclass(frozen=True)
class Reshape:
    """Reshape every sample to ``shape`` (no weights)."""

    shape: tuple[int, ...]


@dataclass(frozen=True)
class Upsample:
    """Nearest-neighbour ×2 upsampling of NCHW maps (ONNX Resize, no weights)."""


@dataclass(frozen=True)
class Skip:
    """Concatenate (channels) the output of step ``source`` to the current map: the paper's
    skip connection carrying the first 4×4 map (z's projection) forward to the next block."""

    source: int


Step = Layer | Reshape | Upsample | Skip


@dataclass(frozen=True)
class Config:
    """Sizes and training settings; the defaults are the shipped model's."""

    hidden: int = 16          # z's size (the paper's N_z)
    channels: int = 32        # the generator's n (16: FID 46.7, 7 digits; 32 sharper)
    embedding: int = 16       # D's bottleneck (the paper's N_h)
    d_channels: int = 16      # the discriminator's n (32 overpowers G: FID 88, 6 digits)
    gamma: float = 1.5        # diversity ratio γ = E[L(G(z))] / E[L(x)]: higher, more
    #                           digits (0.7: 5, 1: 7, 1.3: 9, 1.5: all ten, seeds 0 and 1)
    lambda_k: float = 0.005   # the balance term's learning rate (the paper: 0.001); at
    #                           0.01 with γ 1.5, k_t reaches 1 and the FID rises
    epochs: int = 50          # passes over the train split (longer runs drop digits)
    batch_size: int = 32
    learning_rate: float = 5e-4
    beta1: float = 0.5        # Adam's moments (the paper's implementation: 0.5, 0.999)
    beta2: float = 0.999
    skip: bool = False        # the decoders' skip connection (see ``_decoder``)


def _decoder(inputs: int, c: int, output: str | None = None,
             skip: bool = False) -> tuple[Step, ...]:
    """``inputs`` values -> 8×8 image: dense, 3×3 conv, upsample, 3×3 conv, 3×3 conv to 1
    (through ``output``, an activation, if given). With ``skip``, the dense layer's 4×4
    map joins the conv's output before the upsampling (the paper's skip; nearest
    upsampling commutes with the concat, so it is the upsampled map joining after it)."""
    head = (Layer("dense", (inputs, c * 16)), Reshape((c, 4, 4)),
            Layer("conv", (c, c, 3, 3), "elu", padding=1))
    middle = (Skip(1), Upsample()) if skip else (Upsample(),)
    width = 2 * c if skip else c
    return head + middle + (Layer("conv", (c, width, 3, 3), "elu", padding=1),
                            Layer("conv", (1, c, 3, 3), output, padding=1))


def generator_steps(cfg: Config) -> tuple[Step, ...]:
    """z (hidden) -> 8×8 image through the decoder, ending in a sigmoid: G's images lie in
    (0, 1) as the data's do while D judges them, not only once clipped for sampling
    (a linear output reached FID 82 where the sigmoid reached 54, seed 0)."""
    return _decoder(cfg.hidden, cfg.channels, "sigmoid", cfg.skip)


def discriminator_steps(cfg: Config) -> tuple[Step, ...]:
    """The autoencoder: encoder to ``embedding`` values, then a decoder shaped like G's."""
    c = cfg.d_channels
    encoder = (Layer("conv", (c, 1, 3, 3), "elu", padding=1),
               Layer("conv", (2 * c, c, 3, 3), "elu", stride=2, padding=1),
               Reshape((2 * c * 16,)), Layer("dense", (2 * c * 16, cfg.embedding)))
    decoder = _decoder(cfg.embedding, c, skip=cfg.skip)
    return encoder + tuple(Skip(s.source + len(encoder)) if isinstance(s, Skip) else s
                           for s in decoder)


def _layers(steps: tuple[Step, ...]) -> tuple[Layer, ...]:
    return tuple(s for s in steps if isinstance(s, Layer))


@dataclass
class Trace:
    """Each step's input and output, for the backward pass."""

    inputs: list[np.ndarray] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)


def net_forward(be: Backend, steps: tuple[Step, ...], params: Params, x: np.ndarray,
                trace: Trace | None = None) -> np.ndarray:
    """Run ``steps`` on host array ``x`` with the backend's kernels; host result."""
    h, index, outputs = x, 0, []
    for step in steps:
        if trace is not None:
            trace.inputs.append(h)
        if isinstance(step, Skip):
            h = np.concatenate([h, outputs[step.source]], axis=1)
        elif isinstance(step, Layer):
            w, b = params[index]
            index += 1
            h = layer_forward(be, step, w, b, h)
        elif isinstance(step, Reshape):
            h = h.reshape((len(h), *step.shape))
        else:
            h = be.to_numpy(be.resize(be.asarray(h), scales=[1.0, 1.0, 2.0, 2.0]))
        outputs.append(h)
        if trace is not None:
            trace.outputs.append(h)
    return h


def net_backward(be: Backend, steps: tuple[Step, ...], params: Params, trace: Trace,
                 grad: np.ndarray) -> tuple[Params, np.ndarray]:
    """Gradients of every (weights, bias) and of the input, from the output's ``grad``."""
    grads: Params = []
    g, index = grad, len(params)
    pending: dict[int, np.ndarray] = {}  # skip gradients owed to earlier steps' outputs
    for position in reversed(range(len(steps))):
        step = steps[position]
        if position in pending:
            g = g + pending.pop(position)
        if isinstance(step, Skip):
            width = trace.inputs[position].shape[1]
            g, pending[step.source] = g[:, :width], g[:, width:]
        elif isinstance(step, Layer):
            index -= 1
            dw, db, g = layer_backward(be, step, params[index][0], trace.inputs[position],
                                       trace.outputs[position], g)
            grads.append((dw, db))
        elif isinstance(step, Reshape):
            g = g.reshape(trace.inputs[position].shape)
        else:  # nearest ×2: each input pixel's gradient is the sum over its 2×2 block
            pooled = be.avg_pool2d(be.asarray(np.ascontiguousarray(g, np.float32)), 2, 2)
            g = be.to_numpy(pooled) * np.float32(4.0)
    return grads[::-1], g


def l1_loss(v: np.ndarray, recon: np.ndarray) -> tuple[float, np.ndarray]:
    """``mean |v − recon|`` and its gradient with respect to ``recon`` (that with respect
    to ``v`` is its negative)."""
    diff = v - recon
    return float(np.mean(np.abs(diff))), (-np.sign(diff) / diff.size).astype(np.float32)


def losses_and_gradients(be: Backend, cfg: Config, gen: Params, disc: Params,
                         x: np.ndarray, z: np.ndarray, k: float
                         ) -> tuple[dict[str, float], Params, Params]:
    """One BEGAN step's losses (``real``, ``fake``, ``d``, ``g``) and the gradients of
    ``L_D`` (discriminator) and ``L_G`` (generator)."""
    g_steps, d_steps = generator_steps(cfg), discriminator_steps(cfg)
    tg, tr, tf = Trace(), Trace(), Trace()
    fake = net_forward(be, g_steps, gen, z, tg)
    loss_real, grad_real = l1_loss(x, net_forward(be, d_steps, disc, x, tr))
    loss_fake, grad_fake = l1_loss(fake, net_forward(be, d_steps, disc, fake, tf))
    d_real, _ = net_backward(be, d_steps, disc, tr, grad_real)
    d_fake, d_input = net_backward(be, d_steps, disc, tf, grad_fake)
    k32 = np.float32(k)
    d_grads = [(wr - k32 * wf, br - k32 * bf)
               for (wr, br), (wf, bf) in zip(d_real, d_fake, strict=True)]
    # G's loss sees G(z) twice: as D's input and as the L1 target (the -grad_fake term).
    g_grads, _ = net_backward(be, g_steps, gen, tg, d_input - grad_fake)
    losses = {"real": loss_real, "fake": loss_fake, "d": loss_real - k * loss_fake,
              "g": loss_fake}
    return losses, d_grads, g_grads


class Adam:
    """Adam on host float32 (weights, bias) pairs, with the usual bias correction."""

    def __init__(self, params: Params, beta1: float, beta2: float) -> None:
        self.beta1, self.beta2, self.t = beta1, beta2, 0
        self.m = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
        self.v = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]

    def step(self, params: Params, grads: Params, lr: float) -> Params:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        scale = lr * np.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        out = []
        for i, (pair, grad) in enumerate(zip(params, grads, strict=True)):
            new = []
            for j in (0, 1):
                m = b1 * self.m[i][j] + (1.0 - b1) * grad[j]
                v = b2 * self.v[i][j] + (1.0 - b2) * grad[j] ** 2
                self.m[i] = (m, self.m[i][1]) if j == 0 else (self.m[i][0], m)
                self.v[i] = (v, self.v[i][1]) if j == 0 else (self.v[i][0], v)
                new.append((pair[j] - scale * m / (np.sqrt(v) + 1e-8)).astype(np.float32))
            out.append((new[0], new[1]))
        return out


@dataclass
class BeganReport(TrainReport):
    """``TrainReport`` (``losses`` = M_global per epoch, ``metric`` = the Fréchet
    distance) plus the balance term and the task metrics beside their baselines."""

    k: list[float] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        """What ``hwbench train`` stores beside the weights."""
        return {"metrics": self.metrics, "m_global": [round(m, 5) for m in self.losses],
                "k": [round(k, 5) for k in self.k]}

    def notes(self) -> list[str]:
        """Lines for ``hwbench train``'s report."""
        from hwbench.models import frechet

        return [f"M_global {self.losses[0]:.4f} -> {self.losses[-1]:.4f}, "
                f"k_t {self.k[-1]:.4f}", *frechet.format_metrics(self.metrics)]


def _check(seed: Any, epochs: Any, batch_size: Any) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ArgumentError(f"argument 'seed' must be a non-negative int (NumPy's seeds), "
                            f"got {seed!r}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ArgumentError(f"argument '{name}' must be an int >= 1, got {value!r}")


def _blas_threads(be: Backend) -> contextlib.AbstractContextManager[Any]:
    """NumPy's BLAS limited to the backend's threads where it computes with it: these
    GEMMs are small, and more threads than free cores slow them down many times."""
    if not be.uses_numpy_blas:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency, as the data

    return threadpool_limits(be.threads, user_api="blas")


def init(cfg: Config, seed: int) -> tuple[Params, Params]:
    """Generator and discriminator weights from ``seed``."""
    rng = np.random.default_rng(seed)
    gen = init_layers(_layers(generator_steps(cfg)), rng)
    return gen, init_layers(_layers(discriminator_steps(cfg)), rng)


def lr_at(cfg: Config, epoch: int, epochs: int) -> float:
    """Cosine decay to a tenth over ``epochs``: large steps early, fine ones at the end."""
    return cfg.learning_rate * (0.1 + 0.45 * (1.0 + np.cos(np.pi * epoch / epochs)))


def _epoch(be: Backend, cfg: Config, x: np.ndarray, nets: list[Params], opts: list[Adam],
           rng: np.random.Generator, k: float, lr: float) -> tuple[float, float]:
    """One pass over ``x`` in whole batches, updating ``nets`` ([G, D]) in place; returns
    the new k_t and the epoch's mean M_global."""
    order = rng.permutation(len(x))
    steps = len(x) // cfg.batch_size
    total = 0.0
    for step in range(steps):
        batch = x[order[step * cfg.batch_size:(step + 1) * cfg.batch_size]]
        z = rng.uniform(-1.0, 1.0, (cfg.batch_size, cfg.hidden)).astype(np.float32)
        losses, d_grads, g_grads = losses_and_gradients(be, cfg, nets[0], nets[1], batch, z, k)
        nets[1] = opts[1].step(nets[1], d_grads, lr)
        nets[0] = opts[0].step(nets[0], g_grads, lr)
        balance = cfg.gamma * losses["real"] - losses["fake"]
        k = float(np.clip(k + cfg.lambda_k * balance, 0.0, 1.0))
        total += losses["real"] + abs(balance)
    return k, total / steps


def train(be: Backend, name: str = "began", *, seed: int = 0, epochs: int | None = None,
          cfg: Config | None = None, evaluate: bool = True
          ) -> tuple[Params, BeganReport]:
    """BEGAN training on the digits train split; returns G's then D's weights (one list,
    as ``save_params`` stores them) and a report with M_global and k_t per epoch."""
    cfg = cfg or Config()
    epochs = cfg.epochs if epochs is None else epochs
    _check(seed, epochs, cfg.batch_size)
    x, _ = digits("train")
    nets = list(init(cfg, seed))
    opts = [Adam(net, cfg.beta1, cfg.beta2) for net in nets]
    rng = np.random.default_rng(seed + 1)
    k, m_global, ks = 0.0, [], []
    start = time.perf_counter()
    with _blas_threads(be):
        for epoch in range(epochs):
            k, m = _epoch(be, cfg, x, nets, opts, rng, k, lr_at(cfg, epoch, epochs))
            m_global.append(m)
            ks.append(k)
    be.synchronize()
    seconds = time.perf_counter() - start
    samples = epochs * (len(x) // cfg.batch_size) * cfg.batch_size
    metrics: dict[str, Any] = {}
    if evaluate:
        from hwbench.models import frechet

        metrics = frechet.with_baselines(be, sample(be, nets[0], cfg=cfg))
    fid = float(metrics["generated"]["fid"]) if metrics else float("nan")
    report = BeganReport(name, be.full_name, seed, epochs, seconds, samples / seconds,
                         m_global, "fid", fid, ks, metrics)
    return nets[0] + nets[1], report


def sample(be: Backend, gen: Params, n: int = 1000, seed: int = 1234,
           cfg: Config | None = None) -> np.ndarray:
    """``n`` generated images (N, 1, 8, 8) from seeded z, clipped to the data's [0, 1]."""
    cfg = cfg or Config()
    z = np.random.default_rng(seed).uniform(-1.0, 1.0, (n, cfg.hidden)).astype(np.float32)
    return np.clip(net_forward(be, generator_steps(cfg), gen, z), 0.0, 1.0)


def split_params(params: Params, cfg: Config | None = None) -> tuple[Params, Params]:
    """``train``'s one list as (generator, discriminator)."""
    count = len(_layers(generator_steps(cfg or Config())))
    return params[:count], params[count:]


def save(path: str | Path, params: Params, meta: dict[str, Any], new: bool = False) -> Path:
    """G's then D's weights as plain arrays (``digits.save_params``'s format)."""
    return save_params(path, "began", params, meta, new=new)


def load(path: str | Path | None = None, cfg: Config | None = None) -> tuple[Params, Params]:
    """Shipped (or given) BEGAN weights as (generator, discriminator); no pickle."""
    cfg = cfg or Config()
    path = Path(path) if path is not None else WEIGHTS_DIR / "began.npz"
    layers = _layers(generator_steps(cfg)) + _layers(discriminator_steps(cfg))
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model"]) != "began":
                raise ResultsError(f"{path} holds weights of {str(data['model'])!r}, not began")
            params = [(data[f"w{i}"], data[f"b{i}"]) for i in range(len(layers))]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ResultsError(f"cannot read began weights from {path}: {exc}") from exc
    for layer, (w, b) in zip(layers, params, strict=True):
        if w.shape != layer.shape or w.dtype != np.float32 or b.dtype != np.float32:
            raise ResultsError(f"{path}: weights of shape {w.shape} do not fit {layer}")
    return split_params(params, cfg)


def load_meta(path: str | Path | None = None) -> dict[str, Any]:
    """The metadata ``hwbench train`` stored beside the weights."""
    path = Path(path) if path is not None else WEIGHTS_DIR / "began.npz"
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["meta"]))


def to_onnx(gen: Params, cfg: Config | None = None, batch: int | None = None):
    """The generator as an ONNX ModelProto (opset 13): ``z`` (batch, hidden) -> images
    (batch, 1, 8, 8) clipped to [0, 1], exactly what ``sample`` computes."""
    from onnx import TensorProto, helper, numpy_helper

    cfg = cfg or Config()
    nodes, inits, current, index, names = [], [], "z", 0, []
    for position, step in enumerate(generator_steps(cfg)):
        out = f"h{position}"
        if isinstance(step, Skip):
            nodes.append(helper.make_node("Concat", [current, names[step.source]], [out],
                                          axis=1))
        elif isinstance(step, Layer):
            w, b = gen[index]
            inits += [numpy_helper.from_array(w, f"w{index}"),
                      numpy_helper.from_array(b, f"b{index}")]
            if step.kind == "dense":
                nodes.append(helper.make_node("Gemm", [current, f"w{index}", f"b{index}"], [out]))
            else:
                nodes.append(helper.make_node(
                    "Conv", [current, f"w{index}", f"b{index}"], [out],
                    kernel_shape=list(step.shape[2:]), strides=[step.stride] * 2,
                    pads=[step.padding] * 4))
            if step.activation is not None:
                op = {"elu": "Elu", "sigmoid": "Sigmoid"}[step.activation]
                nodes.append(helper.make_node(op, [out], [f"{out}_{step.activation}"]))
                out = f"{out}_{step.activation}"
            index += 1
        elif isinstance(step, Reshape):
            name = f"shape{position}"
            inits.append(numpy_helper.from_array(np.array([-1, *step.shape], np.int64), name))
            nodes.append(helper.make_node("Reshape", [current, name], [out]))
        else:
            inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32),
                                                 f"scales{position}"))
            nodes.append(helper.make_node("Resize", [current, "", f"scales{position}"], [out],
                                          mode="nearest"))
        current = out
        names.append(out)
    inits += [numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
              numpy_helper.from_array(np.array(1.0, np.float32), "hi")]
    nodes.append(helper.make_node("Clip", [current, "lo", "hi"], ["images"]))
    graph = helper.make_graph(
        nodes, "began_generator",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, cfg.hidden])],
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 1, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                             producer_name="hwbench")
