"""What every recipe shares: named players and the machinery around them.

A recipe declares its players (`add_player("G", net, lr)`): each is a net with its optimizer and
gradient scaler, and the base class does for any number of them what every GAN step needs -
channels_last layout, the DDP wrapper, torch.compile, mixed precision, freezing a player during
another's update, the learning-rate and momentum schedules, and the checkpoint state. A recipe
file then holds only its algorithm: `train_step(batch)` and how to sample.

`Recipe` is the protocol the trainer, the hooks and the CLI rely on; nothing outside recipes/
knows which players a recipe has or what its statistics mean.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

import torch
from torch import nn

from ganforge.config import Config
from ganforge.core.registry import Registry
from ganforge.core.distributed import DistInfo
from ganforge.core.stats import StatPlot
from ganforge.data import Dataset
from ganforge.generator import GeneratorHandle


class Recipe(Protocol):
    """What one training step does, and what a trainer, a hook or `ganforge sample` may ask of it."""

    kind: ClassVar[str]  # the name in RECIPES (train.recipe)
    players: dict[str, "Player"]
    precision: str  # resolved: fp32 | bf16 | fp16
    measure_grads: bool  # on: each update records its gradient norm, for grad_norms()

    @classmethod
    def check(cls, cfg: Config) -> str | None: ...  # why a config cannot work with this recipe
    @classmethod
    def complete(cls, cfg: Config) -> Config: ...  # the config with what the recipe takes from elsewhere
    @classmethod
    def build(cls, cfg: Config, data: "Dataset", device: torch.device, dist: DistInfo) -> "Recipe": ...
    @classmethod
    def load_generator(cls, cfg: Config, nets: dict[str, dict], step: int, device: str) -> "GeneratorHandle": ...

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...  # detached scalars
    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]: ...
    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor: ...  # eval mode, no state change
    def generator(self) -> "GeneratorHandle": ...  # the live generator, for metrics and export
    def stat_labels(self) -> dict[str, str]: ...  # stat key -> name on the progress line
    def stat_plots(self) -> tuple["StatPlot", ...]: ...  # how the report draws the statistics
    def grid_columns(self, inputs: dict) -> int | None: ...  # images per row of the sample grids
    def report_words(self, end: dict[str, float], value_range: str) -> list[str]: ...  # the report's sentences
    inputs_caption: str  # image-to-image: what the grids' first rows hold ("" otherwise)
    grid_rows_caption: str  # image-to-image: what the grids' last rows hold

    def set_epoch(self, epoch: int) -> None: ...
    def use_run_folder(self, path: Path) -> None: ...  # where it may keep what it computes once
    def grad_norms(self) -> dict[str, float]: ...  # "grad_<player>" -> norm at its last measured update
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


# --- devices and precision -------------------------------------------------------------------------

RECIPES: Registry[type] = Registry("recipe")  # train.recipe -> its RecipeBase subclass


def register(cls):
    """Class decorator: the recipe becomes `train.recipe=<cls.kind>`."""
    RECIPES.add(cls.kind, cls)
    return cls


LOSSES_CAPTION = "losses of D and G per step"


def d_words(end: dict[str, float]) -> list[str]:
    """What D said of real and generated batches at the end, for a loss on probabilities."""
    if "D_x" not in end or "D_G_z" not in end:
        return []
    return [f"At the end D gave real batches D(x) = {end['D_x']:.2f} and generated ones D(G(z)) = {end['D_G_z']:.2f} "
            "on average (1 means sure it is real; the game's equilibrium is 0.5 for both)."]


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 is the faster choice on `device`: an Ampere+ GPU, or a CPU with AMX tiles.
    AVX-512 BF16 alone does not count: on such a CPU (a 2-core Xeon, ganforge 0.2) the DCGAN step ran
    0.78x as fast in bf16 as in float32 (python -m bench.throughput --model dcgan --fp32)."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:  # not Linux: be conservative
        return False
    return "amx_bf16" in flags


def resolve_precision(choice: str, device: torch.device) -> str:
    if choice == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return choice


def has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def batch_dependent(net: nn.Module) -> bool:
    """Whether a sample's output depends on the rest of its batch: batch norm, or a layer that says
    so (`mixes_batch`: StyleGAN's minibatch standard deviation)."""
    return has_batchnorm(net) or any(getattr(m, "mixes_batch", False) for m in net.modules())


def has_conv(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in net.modules())


def _ddp(net: nn.Module, device: torch.device) -> nn.Module:
    """DDP without buffer sync in forward: D runs on real and fake before one backward, and batch
    norm statistics stay per rank. (torch >= 2.13 names the switch forward_sync_buffers.)"""
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters:
        return DDP(net, device_ids=ids, forward_sync_buffers=False)
    return DDP(net, device_ids=ids, broadcast_buffers=False)


def _ema(net: nn.Module, halflife_kimg: float, batch_size: int):
    """torch's AveragedModel with decay beta = 0.5 ** (batch / half-life in images): the average
    forgets half its weight every `halflife_kimg` thousand images."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    beta = 0.5 ** (batch_size / (halflife_kimg * 1000))
    ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(beta), use_buffers=False)
    ema.beta = beta
    return ema.requires_grad_(False)


def make_optimizer(cfg: Config, params, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Fused kernels where torch has them (one kernel for all parameters: about 4x faster than the
    per-tensor loop on CPU, measured in bench/); the update is the same."""
    o = cfg.optim
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    decay = {"weight_decay": o.weight_decay} if o.weight_decay else {}  # coupled L2, as torch applies it
    if o.kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(o.betas), **fused, **decay)
    if o.kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, **decay)
    return torch.optim.SGD(params, lr=lr, momentum=o.momentum, **fused, **decay)


def _grad_norm(net: nn.Module) -> torch.Tensor:
    grads = [q.grad for q in net.parameters() if q.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float())


# --- players ----------------------------------------------------------------------------------------

@dataclass
class Player:
    name: str
    net: nn.Module  # the plain module: sampling, checkpoints, export
    run: nn.Module  # what this player's own training forwards call (DDP and / or compiled)
    frozen: nn.Module  # what another player's step calls: outside DDP, so a frozen net takes no part in sync
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    lr: float  # the initial learning rate; schedules start from it
    channels_last: bool = False
    updates: int = 0
    ema: "torch.optim.swa_utils.AveragedModel | None" = None  # moving average of `net`, when asked for
    grad_norm: torch.Tensor | None = None  # of the last update, while RecipeBase.measure_grads is on

    @property
    def sampler(self) -> nn.Module:
        """What samples come from: the moving average when there is one, else the net itself."""
        return self.ema.module if self.ema is not None else self.net


class RecipeBase:
    # Config keys this recipe reads beyond those every run reads (data, model shape, optimizer, log,
    # run). A key that another recipe reads and this one does not must keep its default: validate
    # refuses it by name rather than letting it be silently ignored.
    reads: ClassVar[frozenset[str]] = frozenset()
    kind: ClassVar[str] = ""
    generator_player: ClassVar[str] = "G"  # the player a GeneratorHandle samples from
    draws_from_latent: ClassVar[bool] = True  # its generator maps latents to samples (not images to images)
    has_classifier: ClassVar[bool] = False  # learns a classifier of the data's classes (its handle's C)
    loss_words: ClassVar[str | None] = None  # what the report calls its objective (None: "<loss.kind> loss")

    @classmethod
    def player_state(cls, nets: dict[str, dict]) -> tuple[str, dict]:
        """(name, weights) of the generator player among those a checkpoint or an export holds:
        its moving average (`G_ema`) when there is one."""
        for name in (f"{cls.generator_player}_ema", cls.generator_player):
            if name in nets:
                return name, nets[name]
        raise KeyError(f"no weights for player '{cls.generator_player}' of recipe '{cls.kind}' "
                       f"(found: {', '.join(nets) or 'none'})")

    @classmethod
    def load_critic(cls, cfg: Config, nets: dict[str, dict], device: str = "cpu"):
        """D as a function (images, classes or None) -> a logit per image, or (None, why): only the
        GAN recipe's D judges single images (inpainting's prior)."""
        return None, f"a {cls.kind} model's D does not judge single images"

    def __init__(self, cfg: Config, device: torch.device, dist: DistInfo = DistInfo()):
        self.cfg, self.device, self.dist = cfg, device, dist
        self.players: dict[str, Player] = {}
        self.precision = resolve_precision(cfg.train.precision, device)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        # The health checks switch this on for the steps they read; off, an update costs nothing extra.
        self.measure_grads = False

    @classmethod
    def check(cls, cfg: Config) -> str | None:
        return None

    @classmethod
    def complete(cls, cfg: Config) -> Config:
        """The config a run of this recipe trains: `cfg` itself, or with settings the recipe takes
        from elsewhere (the encoder takes its generator's data and model from model.G_from)."""
        return cfg

    def use_run_folder(self, path: Path) -> None:
        """The run's folder, for what a recipe computes once and keeps beside its checkpoints
        (text-gan: a pretrained encoder's vectors of the training captions). Called on the process
        that writes files, before the first step; nothing by default."""

    def add_player(self, name: str, net: nn.Module, lr: float, ema_halflife_kimg: float = 0.0) -> Player:
        """Make `net` a trained player: layout, DDP, compile, optimizer and scaler, in that order
        (parameters keep their identity through the layout change, so the optimizer sees the same
        ones), and a moving average of its weights when `ema_halflife_kimg` > 0."""
        cfg, device = self.cfg, self.device
        net = net.to(device)
        channels_last = cfg.train.channels_last and has_conv(net)
        if channels_last:
            net.to(memory_format=torch.channels_last)
        run = _ddp(net, device) if self.dist.enabled else net
        frozen = net
        if cfg.train.compile:
            run = torch.compile(run)
            frozen = torch.compile(net) if self.dist.enabled else run
        # fp16 gradients underflow without loss scaling; bf16 has float32's range and needs none.
        scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        player = Player(name, net, run, frozen, make_optimizer(cfg, net.parameters(), lr, device), scaler, lr,
                        channels_last)
        if ema_halflife_kimg > 0:
            player.ema = _ema(net, ema_halflife_kimg, cfg.train.batch_size)
        self.players[name] = player
        return player

    @torch.no_grad()
    def update_ema(self, p: Player) -> None:
        """One EMA step after an update of `p` (the first copies the weights); buffers such as batch
        norm statistics are copied, not averaged, as StyleGAN2-ADA does."""
        if p.ema is None:
            return
        p.ema.update_parameters(p.net)
        for b_ema, b in zip(p.ema.module.buffers(), p.net.buffers()):
            b_ema.copy_(b)

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @contextlib.contextmanager
    def freeze(self, *names: str):
        """No gradients are computed or kept for these players' weights inside the block."""
        for n in names:
            self.players[n].net.requires_grad_(False)
        try:
            yield
        finally:
            for n in names:
                self.players[n].net.requires_grad_(True)

    # --- one optimizer update ---------------------------------------------------------------
    def prepare(self, p: Player) -> None:
        """Before a backward: this update's learning rate, gradients cleared."""
        o = self.cfg.optim
        if o.lr_decay != 1.0:  # pylearn2's ExponentialDecay: lr0 / decay^updates, floored at lr_min
            lr = max(p.lr / o.lr_decay ** p.updates, o.lr_min)
            for group in p.opt.param_groups:
                group["lr"] = lr
        p.opt.zero_grad(set_to_none=True)

    def apply(self, p: Player) -> None:
        """After the backward: the (scaled) optimizer step."""
        if self.measure_grads:  # of the unscaled gradient (fp16 scales the loss)
            p.grad_norm = _grad_norm(p.net) / (p.scaler.get_scale() if p.scaler.is_enabled() else 1.0)
        p.scaler.step(p.opt)
        p.scaler.update()
        p.updates += 1

    def step(self, p: Player, loss: torch.Tensor) -> None:
        self.prepare(p)
        p.scaler.scale(loss).backward()
        self.apply(p)

    def grad_norms(self) -> dict[str, float]:
        """The L2 norm of each player's gradient (over all its parameters) at its last measured update."""
        return {f"grad_{n}": float(p.grad_norm) for n, p in self.players.items() if p.grad_norm is not None}

    def set_epoch(self, epoch: int) -> None:
        """SGD momentum rises linearly from `momentum` at momentum_start_epoch to `momentum_final`
        (pylearn2's MomentumAdjustor); with optim.linear_decay_start, every player's lr falls
        linearly to zero over the last epochs (the CycleGAN / pix2pix schedule); with
        optim.exp_decay_start, exponentially to optim.exp_decay_final of itself (BiGAN's)."""
        o = self.cfg.optim
        if o.linear_decay_start > 0 or o.exp_decay_start > 0:
            epochs = self.cfg.train.epochs
            start = round((o.linear_decay_start or o.exp_decay_start) * epochs)
            if o.linear_decay_start > 0:
                factor = 1.0 - max(0, epoch - start + 1) / (epochs - start + 1)  # the last epoch: 1 / (decay epochs + 1)
            else:  # BiGAN's: final ** (epochs into the decay / decay epochs), the last epoch at `final`
                factor = o.exp_decay_final ** (max(0, epoch - start + 1) / max(1, epochs - start))
            for p in self.players.values():
                for group in p.opt.param_groups:
                    group["lr"] = p.lr * factor
        if o.kind != "sgd":
            return
        span = max(o.momentum_saturate_epoch - o.momentum_start_epoch, 1)
        alpha = min(max((epoch - o.momentum_start_epoch) / span, 0.0), 1.0)
        momentum = o.momentum + alpha * (o.momentum_final - o.momentum)
        for p in self.players.values():
            for group in p.opt.param_groups:
                group["momentum"] = momentum

    def grid_columns(self, inputs: dict) -> int | None:
        """Images per row of this recipe's sample grids (None: a square)."""
        return None

    # --- what the report shows (declared here, drawn by ganforge.report) ----------------------
    inputs_caption: ClassVar[str] = ""  # image-to-image: what the grids' first rows hold
    grid_rows_caption: ClassVar[str] = ""  # image-to-image: what the grids' last rows hold

    def report_words(self, end: dict[str, float], value_range: str) -> list[str]:
        """Sentences on the run's last statistics (`end`: the last stats.jsonl row) for the report."""
        return d_words(end)

    def d_stats(self, loss_D: torch.Tensor, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """loss_D, the loss's statistics of D's outputs, and D's accuracy where the loss has a
        decision boundary (read by the health checks: a D that wins outright)."""
        stats = {"loss_D": loss_D.detach(), **self.loss.stats(logits_real, logits_fake)}
        acc = self.loss.accuracy(logits_real, logits_fake)
        if acc is not None:
            stats["D_acc"] = acc
        return stats

    # --- checkpoint state ---------------------------------------------------------------------
    def rank_local_buffers(self) -> list[torch.Tensor]:
        """The state that may differ between ranks under DDP, beside the random stream: the nets'
        floating-point buffers (batch-norm statistics stay per rank, see _ddp) and their averages'."""
        nets = [p.net for p in self.players.values()] + [p.ema.module for p in self.players.values() if p.ema is not None]
        return [b for net in nets for b in net.buffers() if b.is_floating_point()]

    def extra_state(self) -> dict:
        """Recipe state beyond the players (RNG streams, image pools, ...)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def state_dict(self) -> dict:
        players = {}
        for n, p in self.players.items():
            players[n] = {"net": p.net.state_dict(), "opt": p.opt.state_dict(), "scaler": p.scaler.state_dict(),
                          "updates": p.updates}
            if p.ema is not None:
                players[n]["ema"] = {"net": p.ema.module.state_dict(), "n_averaged": p.ema.n_averaged.clone()}
        return {"kind": self.kind, "players": players, **self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.players) - set(state["players"])
        if missing:
            raise KeyError(f"the checkpoint has no state for player(s) {', '.join(sorted(missing))}")
        for name, p in self.players.items():
            s = state["players"][name]
            p.net.load_state_dict(s["net"])
            p.opt.load_state_dict(s["opt"])
            if s["scaler"]:  # empty when the scaler is off (fp32 / bf16)
                p.scaler.load_state_dict(s["scaler"])
            p.updates = int(s["updates"])
            if p.ema is not None and "ema" in s:  # a run that turns the EMA on at resume starts it afresh
                p.ema.module.load_state_dict(s["ema"]["net"])
                p.ema.n_averaged.copy_(s["ema"]["n_averaged"])
        self.load_extra_state(state)
