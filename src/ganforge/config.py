"""Typed configuration: dataclasses loaded from YAML, overridden with dotted `key=value` pairs.

Fixed choices are strings checked against `Literal` types; open-ended choices (the dataset, the
recipe, the nets, the loss, the metrics) are plain strings that ganforge.validate checks against
their registries, so a new entry needs no change here and this module imports none of them.
Unknown keys fail with "did you mean"; ranges and combinations of the config's own keys are checked
in `validate` below. The fully resolved config is written into every run directory and embedded in
every checkpoint, so a run can always be reproduced from its own files.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from ganforge.core.errors import ConfigError, shorten
from ganforge.core.registry import suggest
from ganforge.core.rng import SEED_MAX


@dataclass
class DataConfig:
    # mnist | fashion-mnist: IDX files found on the data search path;
    # mnist-embedded: the 10,000-image MNIST subset shipped inside the package;
    # stacked-mnist: three MNIST digits as the R, G, B channels (1,000 modes, for mode-collapse studies);
    # folder: an image-folder tree at `root`; ring | grid: toy 2-D mixtures; fake: random tensors;
    # translation (two domains, A -> B): fashion-edges, paired-folder (paired), fashion-sneaker2boot,
    # unpaired-folder (unpaired).
    # (the registry in data/registry.py: `ganforge data list`)
    name: str = "mnist"
    root: str = ""  # searched before the data search path; the tree itself for `folder`
    # train = all training images; train50k / validation = train[0:50000] / train[50000:60000]
    # (the Goodfellow et al. 2014 MNIST split); test = the t10k file.
    split: str = "train"  # one of the dataset's splits (`ganforge data info NAME`)
    resolution: int = 28
    channels: int = 1
    range: Literal["signed", "unit"] = "signed"  # pixels in [-1, 1] (tanh G) or [0, 1] (sigmoid G)
    labels: bool = False  # folder: class labels from sub-folders
    # folder: the colour transparent pixels are composited onto (white | black | #rrggbb). White,
    # because icons, logos and product shots with an alpha channel are drawn to sit on a page.
    background: str = "white"
    max_images: int = 0  # 0 = all; otherwise the first N (quick experiments)
    # semi-supervised learning (train.recipe=ssgan): N labelled images per class, chosen by train.seed
    # (class-balanced; the rest of the training images are used without their labels); 0 = every
    # label the data has (with data.labels_file: every image the file names)
    labels_per_class: int = 0
    # folder: a CSV of `file,label` lines (paths relative to data.root) naming the labelled images;
    # the folder's other images are used without a label (train.recipe=ssgan)
    labels_file: str = ""
    # the seed of the labelled subset's choice; -1 = train.seed (so every seed draws its own subset)
    labels_seed: int = -1
    # how the subset is drawn from that seed: torch (ganforge's permutation) or numpy (the first N of
    # each class in numpy.random.RandomState(seed).permutation, as openai/improved-gan picks them:
    # data.labels_pick=numpy data.labels_seed=1 gives its MNIST runs' labelled images, --seed_data 1)
    labels_pick: Literal["torch", "numpy"] = "torch"
    # folder: captions for text-to-image (train.recipe=text-gan): a .txt beside each image (one
    # caption per line), or captions.csv (file,caption) / captions.jsonl ({"file", "caption"}) in
    # data.root; images without a caption are left out and named in the warning
    captions: bool = False
    # restoration data from any image dataset: box[=F] | strokes[=W] | missing[=P] | masks=DIR |
    # blur[=S] | motion[=L] | noise[=S] | jpeg[=Q] | down[=K] (data/degrade.py); "" = off
    degrade: str = ""
    # step: each training image degraded afresh at every step (restoration: more variety); image: one
    # degradation per training image for the whole run (imputation: the data come with their holes)
    degrade_per: Literal["step", "image"] = "step"
    image_width: int = 0  # translation data: the images' width when not square (0 = data.resolution)
    # folder: where the decoded images live. memory: decoded into RAM by every run; cache: decoded
    # once into a file of the user cache (keyed by the file list, sizes, times and the transform)
    # that later runs map in seconds; stream: read from the files as training goes, by
    # data.workers DataLoader processes; auto: cache when the decoded images fit
    # data.memory_budget_gb, else stream. The batches are the same whichever holds them.
    storage: Literal["auto", "memory", "cache", "stream"] = "auto"
    memory_budget_gb: float = 0.0  # 0 = half the memory available when the run starts
    workers: int = 0  # processes reading streamed images; 0 = the cores beside training's, at least 1
    # toy mixtures (defaults as in the PacGAN code)
    toy_num_samples: int = 100_000
    toy_ring_modes: int = 8
    toy_ring_radius: float = 1.0
    toy_grid_side: int = 5  # modes at {-4, -2, 0, 2, 4}^2 for side 5
    toy_grid_spacing: float = 2.0
    toy_std: Optional[float] = None  # None: 0.01 for ring, 0.05 for grid


@dataclass
class ModelConfig:
    # mlp: the textbook MNIST GAN; goodfellow2014: the paper's maxout MNIST model; dcgan: Radford et al.
    # (the registries in nets/). `arch` names both nets; `G` / `D` choose one of them separately.
    arch: str = "mlp"
    G: str = ""  # "" = model.arch
    D: str = ""  # "" = model.arch
    z_dim: int = 128
    # uniform: on [-sqrt 3, sqrt 3] (unit variance); uniform1: on [-1, 1] (DCGAN's and BiGAN's code)
    z_dist: Literal["normal", "uniform", "uniform1"] = "normal"
    # mlp: G hidden [w, 2w, 4w], D hidden [4w, 2w, w]; goodfellow2014: G hidden w, D w/5 maxout
    # units x 5 pieces; dcgan: base channel count.
    width: int = 256
    d_dropout: float = 0.3  # mlp only; goodfellow2014 uses the paper's 0.2 / 0.5
    d_norm: Literal["batch", "none"] = "batch"  # dcgan D: batch norm, or none (WGAN-GP / R1 critics)
    # spectral normalisation (Miyato et al. 2018) of every conv / linear weight, through
    # torch.nn.utils.parametrizations.spectral_norm
    d_spectral_norm: bool = False
    g_spectral_norm: bool = False
    # Class-conditional GANs, the class fed to G (one-hot beside z) and to D as: cgan (with the
    # input, Mirza & Osindero 2014), projection (Miyato & Koyama 2018) or acgan (an auxiliary
    # classifier head, Odena et al. 2017). Needs labelled data.
    conditional: Literal["none", "cgan", "projection", "acgan"] = "none"
    num_classes: int = 0  # conditional: filled in from the data when 0
    class_names: list[str] = field(default_factory=list)  # the data's class names, filled in with num_classes
    # Encoders x -> latent (train.recipe=encoder; bigan): the family (nets/encoder.py: mlp | conv;
    # "" = conv for images of a convolutional G, else mlp) and its width (0 = the family's default).
    E: str = ""
    E_width: int = 0
    # train.recipe=encoder: the trained generator (a run folder, checkpoint or export) whose inverse
    # is learnt, frozen; its data and model settings become this run's. The encoder predicts z, or
    # for a style-based G its w (one for every layer) or w+ (one per layer).
    G_from: str = ""
    encoder_space: Literal["z", "w", "w+"] = "z"
    # pix2pix on data with holes: give the U-Net the mask as one more input channel, count L1 over
    # the missing pixels and show D the completed image (the completion presets turn it on; off,
    # the default, is pix2pix as runs saved before the key existed were trained)
    mask_input: bool = False
    # gain: which of the authors' two set-ups (`jsyoon0823/GAIN`): "tabular" (gain.py: hidden layers
    # as wide as model.width, holes filled with U(0, 0.01) noise) or "mnist" (MNST_Code_Example.py:
    # model.width and model.width / 2, U(0, 1) noise, D's loss x 2, G's adversarial term / mean(1 - m))
    gain_variant: Literal["tabular", "mnist"] = "tabular"
    # text-to-image (train.recipe=text-gan): how captions become vectors (nets/text.py: chars, a small
    # character CNN trained with the GAN, one in G and one in D; minilm, the pretrained
    # all-MiniLM-L6-v2 sentence encoder, frozen, from the `text` extra); "" = no text input
    text_encoder: str = ""
    text_dim: int = 128  # the caption's code beside z in G and beside D's features (Reed et al.: 128)
    # StackGAN's conditioning augmentation: G draws its text code from N(mu(e), sigma(e)) and pays
    # loss.kl_weight x KL(N(mu, sigma) || N(0, I)); sampling uses mu
    text_ca: bool = False
    # captions the model draws from when given none (grids, metrics, the explorer's first page):
    # filled in from the training data (the first caption of images spread over it)
    captions: list[str] = field(default_factory=list)


@dataclass
class LossConfig:
    # ns: non-saturating; minimax: the paper's saturating log(1 - D(G(z))) (the registry in losses.py)
    kind: str = "ns"
    d_scale: float = 1.0  # loss_D = d_scale * (BCE real + BCE fake); the paper uses 0.5
    # Lipschitz constraints and regularisers of D (losses.py); 0 = off
    clip: float = 0.0  # WGAN: clamp every D weight to [-clip, clip] after each D update (paper: 0.01)
    gp_weight: float = 0.0  # WGAN-GP: lambda of the gradient penalty on interpolates (paper: 10)
    r1_gamma: float = 0.0  # R1: gamma of the penalty on real gradients, E[||grad D(x)||^2] * gamma / 2
    r1_every: int = 16  # lazy R1 (StyleGAN2): every N-th D update, scaled by N
    # Path-length regularisation of G (StyleGAN2; needs a mapping network, model.arch=stylegan):
    # weight of (||J_w^T y|| - a)^2, a the running mean of the lengths (decay pl_decay); lazy, every
    # pl_every-th G update scaled by pl_every, on batch / pl_batch_shrink fresh latents. 0 = off;
    # the paper's FFHQ setting is 2, its CIFAR-10 setting (small images, like ours) 0.
    pl_weight: float = 0.0
    pl_every: int = 4
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    # image-to-image translation (recipes pix2pix / cyclegan)
    l1_weight: float = 100.0  # pix2pix: lambda of the L1 distance to the target (paper: 100)
    cycle_weight: float = 10.0  # cyclegan: lambda of the cycle-consistency L1 (paper: 10)
    identity_weight: float = 0.5  # cyclegan: identity loss, as a fraction of cycle_weight (reference code: 0.5)
    adv_weight: float = 1.0  # translation: weight of G's adversarial term (0: L1 / cycle alone, the papers' ablation)
    # gain (Yoon et al. 2018): the hint's share of revealed observed values, and alpha, the weight of
    # the reconstruction of observed values beside the adversarial term (the authors' code: 0.9, 100;
    # their MNIST script's alpha: 10, as configs/mnist_gain.yaml). A default is part of every saved
    # config: changing one would make the runs saved before refuse to load.
    hint_rate: float = 0.9
    gain_alpha: float = 100.0
    # srgan (Ledig et al. 2017): weights of G's pixel MSE and of its content loss (the MSE between the
    # domain feature net's last conv features of G's output and of the target; VGG19's in the paper)
    mse_weight: float = 1.0
    content_weight: float = 1.0
    # ssgan (Salimans et al. 2016): weight of the unsupervised (real vs generated) term beside the
    # labelled cross-entropy; 0 trains the same classifier on the labelled images alone (the baseline)
    unlabeled_weight: float = 1.0
    # text-gan (Reed et al. 2016): weight of G's interpolation term (GAN-INT: half a batch more of
    # samples for captions halfway between two training captions; 0 = GAN-CLS alone), the
    # interpolation point, and the weight of conditioning augmentation's KL term (StackGAN: 2)
    int_weight: float = 1.0
    int_beta: float = 0.5
    kl_weight: float = 2.0
    # text-gan: weight of mode seeking (Mao et al. 2019, MSGAN): half of G's batch repeats the other
    # half's captions with new z, and G pays ms_weight / (mean |G(z1, t) - G(z2, t)| / mean |z1 - z2|),
    # against a G that draws one image per caption whatever z; 0 = off
    ms_weight: float = 0.0


@dataclass
class OptimConfig:
    kind: Literal["adam", "sgd", "rmsprop"] = "adam"  # rmsprop: the WGAN paper's optimizer
    lr_G: float = 2e-4
    lr_D: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam
    momentum: float = 0.5  # sgd: momentum at `momentum_start_epoch` ...
    momentum_final: float = 0.5  # ... rising linearly to this at `momentum_saturate_epoch`
    momentum_start_epoch: int = 1
    momentum_saturate_epoch: int = 1
    lr_decay: float = 1.0  # lr divided by this after every update (pylearn2 ExponentialDecay)
    lr_min: float = 0.0
    # lr held for the first `linear_decay_start` of the epochs, then decayed linearly to 0 by the
    # end (CycleGAN and pix2pix: 0.5, "constant for 100 epochs, then linearly to zero"); 0 = off
    linear_decay_start: float = 0.0
    # or decayed exponentially from there to `exp_decay_final` x lr in the last epoch (BiGAN's code:
    # 0.5 and 0.01, "200 epochs constant, then 200 down to 1 %"); 0 = off
    exp_decay_start: float = 0.0
    exp_decay_final: float = 0.01
    # coupled L2 weight decay, added to every parameter's gradient as torch's Adam and SGD do (BiGAN's
    # code: 2.5e-5); 0 = off
    weight_decay: float = 0.0


@dataclass
class TrainConfig:
    recipe: str = "gan"  # what one training step does (the registry in recipes/base.py)
    epochs: int = 200
    max_steps: int = 0  # 0 = no limit; otherwise stop after this many steps
    # 0 = no limit; otherwise stop once this much training time has passed (the run's train_time_s:
    # steps only, evaluation, pictures and checkpoints excluded; counted over resumes). For "what
    # does this recipe reach in 8 minutes" comparisons; the number of steps then depends on the machine.
    max_minutes: float = 0.0
    # 0 = no limit; otherwise stop once this many thousand real images have been drawn (steps x
    # batch / 1000): a budget that means the same on every machine, unlike max_minutes.
    max_kimg: float = 0.0
    batch_size: int = 512
    n_dis: int = 1  # k: discriminator steps per generator step
    reuse_fake: bool = True  # G step reuses the D step's G(z) instead of a second G forward
    # alternating: a D update, then a G update against the updated D (Algorithm 1 of the paper);
    # simultaneous: both players' gradients from one forward pass at the same parameters, applied
    # together (what the paper's own code, goodfeli/adversarial, does). simultaneous needs n_dis = 1.
    update: Literal["alternating", "simultaneous"] = "alternating"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # fp32, or autocast to bf16 / fp16 (fp16 with a gradient scaler). Weights, optimizer state and
    # losses stay float32. auto = bf16 where it is the faster choice: CUDA compute capability >= 8.0,
    # or a CPU with AMX tiles; fp32 elsewhere. On a 2-core AMX CPU bf16 + channels_last reached the
    # demo's FID threshold 1.3-1.4x sooner with the same final FID within seed noise; on a CPU with
    # AVX-512 BF16 but no AMX, bf16 ran the DCGAN step 0.78x as fast as fp32 (docs/RESULTS.md).
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # Convolutional nets and their image batches in NHWC layout (oneDNN / cuDNN's preferred layout;
    # 1.26x for the DCGAN on this CPU); no effect on MLPs. The maths are the same.
    channels_last: bool = True
    # An exponential moving average of G's weights (Karras et al.; half-life in thousands of images,
    # 0 = off) used for sample grids, metrics, `sample` and the export; G itself keeps training.
    ema_halflife_kimg: float = 0.0
    # DiffAugment policy applied to everything D sees: "" (off) or a comma list of color,
    # translation, cutout (core/augment.py; the paper's choice for small data: all three)
    augment: str = ""
    # Each policy of `augment` is applied to a sample with probability augment_p (1 = DiffAugment:
    # always). With ada_target > 0, p adapts as in StyleGAN2-ADA (Karras et al. 2020): every
    # ada_every D updates, r_t = E[sign(D(x_real))] over them; p moves up when r_t > ada_target (D is
    # overfitting its reals) and down otherwise, by batch * ada_every / (ada_kimg * 1000) each time,
    # so p can cross 0 -> 1 in ada_kimg thousand images (the paper: target 0.6, 500 kimg on GPUs;
    # 100 here suits CPU-length runs). augment_p is then where p starts (the paper starts at 0).
    augment_p: float = 1.0
    ada_target: float = 0.0
    ada_every: int = 4
    ada_kimg: float = 100.0
    # PacGAN (Lin et al. 2018): D judges `pack` samples at once (stacked along the channels), so a
    # collapsed G is easier to spot; 1 = off. The batch per process must be a multiple of it.
    pack: int = 1
    # CycleGAN: D learns from a history of up to `pool_size` generated images (half of each batch
    # drawn from it once full; Shrivastava et al. 2017), not only the newest; 0 = off
    pool_size: int = 0
    # torch.compile G and D (TorchInductor: needs a C++ compiler on CPU, Triton on CUDA). The first
    # steps are slow while it compiles; it pays off on long runs (measured in docs/RESULTS.md).
    compile: bool = False
    # Keep ckpt/best.pt, the checkpoint with the best value so far of one number the run measures:
    # an in-training metric (eval.metrics at eval.every_steps, as metrics.jsonl names it: fid, kid,
    # parzen, modes_hit, modes_captured, prdc_recall, ...) or a health check's `coverage`.
    # "" = off. Lower or higher is better as the metric says (its Headline in metrics/).
    keep_best: str = ""
    # What a collapse alarm of the health checks does (engine/health.py): warn (log it and carry on),
    # stop (save a checkpoint and end the run), rollback (return to ckpt/best.pt's weights and
    # optimizer state and continue from the current step with fresh batches; needs keep_best).
    on_collapse: Literal["warn", "stop", "rollback"] = "warn"


@dataclass
class HealthConfig:
    """Cheap checks for mode collapse and a discriminator that wins outright (engine/health.py)."""
    every_steps: int = 500  # 0 = off
    num_samples: int = 1000  # samples read by the domain classifier (labelled data) or placed on the toy modes
    # a mode is covered when it gets at least this fraction of its uniform share of the samples
    mode_share: float = 0.1
    # alarm when the covered modes fall below this fraction of the most covered at any check so far
    coverage_drop: float = 0.8
    # alarm when D classifies real and generated samples right at least this often, on average over
    # every step since the previous check (not defined for the Wasserstein critic)
    d_win_accuracy: float = 0.99
    max_rollbacks: int = 3  # on_collapse=rollback: stop after this many rollbacks
    # The watch (engine/watch.py): every watch_every steps, whatever every_steps is, a look at D's
    # accuracy over those steps and at G's samples from fixed latents; when D wins outright (at least
    # watch_d_acc), the samples stop changing or they all look alike, the progress line and the
    # report say so, with what to try. Advice only: it never stops a run. 0 = off.
    watch_every: int = 100
    watch_d_acc: float = 0.95


@dataclass
class LogConfig:
    sample_every_steps: int = 0  # 0 = a fixed-latent grid at the end of every epoch
    num_samples: int = 64
    stats_every_steps: int = 50
    ckpt_every_steps: int = 0  # 0 = at the end of every epoch
    ckpt_keep: int = 3
    progress: bool = True
    report: bool = True  # report/ at the end (GIF, plots, report.html); the export is written either way
    tensorboard: bool = False  # also a TensorBoard event file in <run>/tensorboard/ (ganforge[tensorboard])


@dataclass
class EvalConfig:
    """Metrics computed during training (cheaper settings than `ganforge eval`'s 10,000 samples)."""
    every_steps: int = 0  # 0 = off
    metrics: list[str] = field(default_factory=lambda: ["fid", "modes"])  # names in the metric registry
    num_samples: int = 2000
    seed: int = 0
    # Inception-v3 FID weights for image-folder data (pt_inception-2015-12-05-6726825d.pth): a local
    # file; "" = the cache, fetched there on first use. ganforge eval takes --inception-weights.
    inception_weights: str = ""
    # A feature net trained by `ganforge featurenet train` (its .safetensors or .json): FID / KID /
    # PRDC in that domain space instead of the default one. "" = the data's default.
    feature_net: str = ""


@dataclass
class RunConfig:
    dir: str = "runs"
    name: str = ""  # default: the config file's stem


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    run: RunConfig = field(default_factory=RunConfig)


# Keys whose change makes a checkpoint's weights or optimizer state unusable.
# Keys a resumed run must keep: they change the networks' shapes or what G's input means (a run
# trained on uniform z and continued on normal z would silently become a different model), or which
# labels a semi-supervised run learns from.
# model.arch counts through model.G / model.D, which architecture_diff compares as the nets they resolve to.
ARCHITECTURE_KEYS = ("train.recipe", "train.pack", "data.resolution", "data.channels", "data.range", "model.G", "model.D",
                     "model.z_dim", "model.z_dist", "model.width", "model.d_norm", "model.d_spectral_norm",
                     "model.conditional",
                     "model.g_spectral_norm", "optim.kind", "data.labels_per_class", "data.labels_file",
                     "data.labels_seed", "data.labels_pick",
                     "model.text_encoder", "model.text_dim", "model.text_ca")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def all_keys() -> list[str]:
    """Every dotted key and section name a config accepts (for "did you mean")."""
    keys = list(flatten(to_dict(Config())))
    return keys + sorted({k.rsplit(".", 1)[0] for k in keys})


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check `value` against the annotation `tp`; return it converted (int -> float only)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key, where)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {key}={shorten(value)} is not one of {', '.join(map(str, choices))}"
                              f"{suggest(str(value)[:200], map(str, choices))}")
        return value
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be a list, got {shorten(value)}")
        return [_coerce(v, inner, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, got {shorten(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key} must be an integer, got {shorten(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {key} must be a number, got {shorten(value)}")
        try:
            value = float(value)
        except OverflowError:  # an integer past float's range
            value = math.inf
        if not math.isfinite(value):  # inf and nan mean nothing for any key: a typo, or a value meant as "off"
            raise ConfigError(f"{where}: {key}={value} must be a finite number")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string, got {shorten(value)}")
        return value
    raise TypeError(f"unsupported annotation {tp} for {key}")  # programming error, not user input


def _build(cls, data: dict, prefix: str, where: str):
    hints = typing.get_type_hints(cls)
    fields = _fields(cls)
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {shorten(full)}{suggest(str(full)[:200], all_keys())}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{full}' must be a section (a mapping), got {shorten(value)}")
            kwargs[key] = _build(tp, value, full + ".", where)
        else:
            kwargs[key] = _coerce(value, tp, full, where)
    return cls(**kwargs)


def from_dict(data: dict, where: str = "config") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level must be a mapping of sections, got {type(data).__name__}")
    cfg = _build(Config, data, "", where)
    validate(cfg, where)
    return cfg


def set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: '{p}' is not a section")
    node[parts[-1]] = value


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """`train.batch_size=128` -> ("train.batch_size", 128); values are parsed as YAML scalars."""
    parsed = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like section.key=value (e.g. train.epochs=5)")
        key, raw = item.split("=", 1)
        try:
            value = _yaml(raw, f"override {key.strip()}") if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        parsed.append((key.strip(), value))
    return parsed


def load(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Load a YAML config file (or the defaults when `path` is None) and apply overrides."""
    data: dict = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (presets live in configs/, e.g. configs/mnist_mlp.yaml)")
        try:
            data = _yaml(path.read_text(), str(path))
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML{_yaml_where(e)}: fix the file or start from a preset "
                              "in configs/") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the config ({e})") from None
        if data is None:  # an empty file would silently train every default: refuse it
            raise ConfigError(f"{path}: the config is empty: give at least the sections you change "
                              "(e.g. start from configs/mnist_mlp.yaml), or pass no file to use the defaults")
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections (train:, data:, model:, ...), "
                              f"not a {type(data).__name__}")
    for key, value in parse_overrides(list(overrides)):
        set_dotted(data, key, value)
    cfg = from_dict(data, where)
    if not cfg.run.name:
        cfg.run.name = Path(path).stem if path is not None else "run"
        _check(run_name_problem(cfg.run.name) is None, where,
               f"the config's file name gives the run's name {cfg.run.name!r}, which cannot name a folder: set run.name")
    return cfg


YAML_MAX_VALUES = 100_000  # a config has a few hundred; aliases may not multiply it past this


def _yaml(text: str, where: str):
    """yaml.safe_load, refusing a document whose aliases (&a / *a) expand past YAML_MAX_VALUES
    values (a few hundred bytes of nested aliases can stand for billions, and every later step
    that walks or prints the config would pay for all of them) or that nests past Python's limit."""
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{where}: the YAML nests too deeply to be a config") from None
    stack, seen = [data], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > YAML_MAX_VALUES:
            raise ConfigError(f"{where}: the YAML's aliases (&name / *name) expand to more than {YAML_MAX_VALUES:,} "
                              "values; a config has a few hundred: write the values out, without nested aliases")
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return data


def _yaml_where(e: "yaml.YAMLError") -> str:
    """' at line L, column C (problem)' from a YAML error, on one line."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return where + (f" ({problem})" if problem else "")


def dump(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def run_name_problem(name: str) -> str | None:
    """Why `name` cannot name run folders (`run.dir/00012-NAME`), or None. It must be one plain path
    component, so that a run can never land outside run.dir or inside another run."""
    bad = [ch for ch in ("/", "\\", "\0") if ch in name] or [ch for ch in name if ord(ch) < 32]
    if name in ("", ".", "..") or bad or len(name.encode()) > 200:
        return (f"run.name={shorten(name)} must be one plain folder name (no '/', '\\', control characters, "
                "'.' or '..'; at most 200 bytes), e.g. run.name=mnist_dcgan")
    return None


def _check(ok: bool, where: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"{where}: {msg}")


def validate(cfg: Config, where: str = "config") -> None:
    """Ranges and combinations of the config's own keys. Names that registries own (the dataset,
    recipe, nets, loss, metrics, augmentations) are checked by ganforge.validate, which sits above
    the registries; config imports none of them."""
    d, m, t, o, lg = cfg.data, cfg.model, cfg.train, cfg.optim, cfg.log
    _check(not cfg.run.name or run_name_problem(cfg.run.name) is None, where, str(run_name_problem(cfg.run.name)))
    for key, seed in (("train.seed", t.seed), ("eval.seed", cfg.eval.seed)):
        _check(0 <= seed <= SEED_MAX, where, f"{key}={seed} is out of range: seeds are whole numbers from 0 to {SEED_MAX:,}")
    _check(bool(cfg.run.dir), where, "run.dir is empty: give the folder for run folders (default runs)")
    _check(d.toy_ring_radius > 0 and d.toy_grid_spacing > 0 and (d.toy_std is None or d.toy_std > 0), where,
           "data.toy_ring_radius, data.toy_grid_spacing and data.toy_std must be positive")
    _check(d.resolution >= 4, where, f"data.resolution={d.resolution} must be at least 4")
    _check(d.channels in (1, 3), where, f"data.channels={d.channels} must be 1 (grey) or 3 (RGB)")
    _check(d.max_images >= 0, where, "data.max_images must be >= 0 (0 = all)")
    _check(d.labels_per_class >= 0, where, "data.labels_per_class must be >= 0 (0 = every label)")
    _check(-1 <= d.labels_seed <= SEED_MAX, where,
           f"data.labels_seed={d.labels_seed} is out of range: -1 (train.seed) or a seed from 0 to {SEED_MAX:,}")
    _check(d.workers >= 0, where, f"data.workers={d.workers} must be >= 0 (0 = the cores beside training's)")
    _check(d.memory_budget_gb >= 0, where, f"data.memory_budget_gb={d.memory_budget_gb} must be >= 0 "
                                           "(0 = half the memory available)")
    _check(m.z_dim > 0, where, f"model.z_dim={m.z_dim} must be positive")
    _check(m.width > 0, where, f"model.width={m.width} must be positive")
    _check(0.0 <= m.d_dropout < 1.0, where, f"model.d_dropout={m.d_dropout} must be in [0, 1)")
    _check(cfg.loss.d_scale > 0, where, "loss.d_scale must be positive")
    for key in ("clip", "gp_weight", "r1_gamma"):
        _check(getattr(cfg.loss, key) >= 0, where, f"loss.{key} must be >= 0 (0 = off)")
    _check(cfg.loss.r1_every >= 1, where, "loss.r1_every must be at least 1")
    _check(cfg.loss.pl_weight >= 0, where, f"loss.pl_weight={cfg.loss.pl_weight} must be >= 0 (0 = off)")
    _check(cfg.loss.pl_every >= 1 and cfg.loss.pl_batch_shrink >= 1, where,
           "loss.pl_every and loss.pl_batch_shrink must be at least 1")
    _check(0 < cfg.loss.pl_decay <= 1, where, f"loss.pl_decay={cfg.loss.pl_decay} must be in (0, 1]")
    _check(t.ema_halflife_kimg >= 0, where, "train.ema_halflife_kimg must be >= 0 (0 = off)")
    _check(t.pack >= 1, where, f"train.pack={t.pack} must be at least 1 (1 = no packing)")
    _check(t.pool_size >= 0, where, f"train.pool_size={t.pool_size} must be >= 0 (0 = off)")
    _check(m.text_dim > 0, where, f"model.text_dim={m.text_dim} must be positive")
    _check(cfg.loss.int_weight >= 0 and cfg.loss.kl_weight >= 0 and cfg.loss.ms_weight >= 0, where,
           "loss.int_weight, loss.kl_weight and loss.ms_weight must be >= 0 (0 = off)")
    _check(0.0 <= cfg.loss.int_beta <= 1.0, where, f"loss.int_beta={cfg.loss.int_beta} must be in [0, 1]")
    _check(cfg.loss.unlabeled_weight >= 0, where, f"loss.unlabeled_weight={cfg.loss.unlabeled_weight} must be >= 0")
    _check(0 < cfg.loss.hint_rate <= 1, where, f"loss.hint_rate={cfg.loss.hint_rate} must be in (0, 1]")
    for key in ("l1_weight", "cycle_weight", "identity_weight", "adv_weight", "gain_alpha", "mse_weight",
                "content_weight"):
        _check(getattr(cfg.loss, key) >= 0, where, f"loss.{key} must be >= 0")
    _check(0 <= o.linear_decay_start < 1, where,
           f"optim.linear_decay_start={o.linear_decay_start}: the fraction of the epochs before the linear decay, "
           "0 (off) up to below 1 (CycleGAN: 0.5)")
    _check(o.linear_decay_start == 0 or o.lr_decay == 1.0, where,
           "optim.linear_decay_start and optim.lr_decay are two learning-rate schedules: choose one")
    _check(0 <= o.exp_decay_start < 1, where,
           f"optim.exp_decay_start={o.exp_decay_start}: the fraction of the epochs before the exponential decay, "
           "0 (off) up to below 1 (BiGAN: 0.5)")
    _check(0 < o.exp_decay_final <= 1, where, f"optim.exp_decay_final={o.exp_decay_final} must be in (0, 1]")
    _check(sum(x for x in (o.linear_decay_start > 0, o.exp_decay_start > 0, o.lr_decay != 1.0)) <= 1, where,
           "optim.linear_decay_start, optim.exp_decay_start and optim.lr_decay are learning-rate schedules: choose one")
    _check(o.weight_decay >= 0 and math.isfinite(o.weight_decay), where,
           f"optim.weight_decay={o.weight_decay} must be >= 0 (0 = off)")
    _check(t.batch_size % t.pack == 0, where,
           f"train.batch_size={t.batch_size} is not a multiple of train.pack={t.pack}: D judges packs of "
           f"{t.pack} samples, so use e.g. train.batch_size={t.batch_size - t.batch_size % t.pack or t.pack}")
    _check(0 <= t.augment_p <= 1, where, f"train.augment_p={t.augment_p} must be in [0, 1]")
    _check(0 <= t.ada_target < 1, where, f"train.ada_target={t.ada_target} must be in [0, 1) (0 = p fixed)")
    _check(t.ada_every >= 1 and t.ada_kimg > 0, where, "train.ada_every must be >= 1 and train.ada_kimg > 0")
    _check(bool(t.augment) or (t.augment_p == 1 and t.ada_target == 0), where,
           "train.augment_p and train.ada_target say how often to augment, but train.augment names no "
           "augmentation: set train.augment=color,translation,cutout (or a part of it)")
    _check(o.lr_G > 0 and o.lr_D > 0, where, "optim.lr_G and optim.lr_D must be positive")
    _check(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), where,
           f"optim.betas={o.betas} must be two numbers in [0, 1)")
    for key in ("momentum", "momentum_final"):
        _check(0 <= getattr(o, key) < 1, where, f"optim.{key}={getattr(o, key)} must be in [0, 1)")
    _check(o.momentum_saturate_epoch >= o.momentum_start_epoch, where,
           "optim.momentum_saturate_epoch must be >= optim.momentum_start_epoch")
    _check(o.lr_decay >= 1.0, where, f"optim.lr_decay={o.lr_decay} must be >= 1 (lr is divided by it)")
    _check(o.lr_min >= 0, where, "optim.lr_min must be >= 0")
    _check(t.epochs > 0, where, f"train.epochs={t.epochs} must be positive")
    _check(t.max_steps >= 0, where, "train.max_steps must be >= 0 (0 = no limit)")
    _check(t.max_kimg >= 0 and math.isfinite(t.max_kimg), where, f"train.max_kimg={t.max_kimg} must be >= 0 (0 = no limit)")
    _check(t.max_minutes >= 0 and math.isfinite(t.max_minutes), where,
           f"train.max_minutes={t.max_minutes} must be >= 0 (0 = no limit)")
    _check(t.batch_size > 0, where, f"train.batch_size={t.batch_size} must be positive")
    _check(t.n_dis >= 1, where, f"train.n_dis={t.n_dis} must be at least 1")
    _check(lg.sample_every_steps >= 0 and lg.ckpt_every_steps >= 0, where, "log.*_every_steps must be >= 0")
    _check(lg.stats_every_steps > 0, where, "log.stats_every_steps must be positive")
    _check(0 < lg.num_samples <= 1024, where, "log.num_samples must be in 1..1024")
    _check(lg.ckpt_keep >= 1, where, "log.ckpt_keep must be at least 1")
    _check(cfg.eval.every_steps >= 0, where, "eval.every_steps must be >= 0 (0 = off)")
    _check(cfg.eval.num_samples >= 2, where, "eval.num_samples must be at least 2")
    _validate_health(cfg, where)


def _validate_health(cfg: Config, where: str) -> None:
    h, t = cfg.health, cfg.train
    _check(h.every_steps >= 0, where, "health.every_steps must be >= 0 (0 = off)")
    _check(h.num_samples >= 10, where, "health.num_samples must be at least 10")
    _check(0 < h.mode_share <= 1, where, f"health.mode_share={h.mode_share} must be in (0, 1]")
    _check(0 < h.coverage_drop <= 1, where, f"health.coverage_drop={h.coverage_drop} must be in (0, 1]")
    _check(0.5 < h.d_win_accuracy <= 1, where, f"health.d_win_accuracy={h.d_win_accuracy} must be in (0.5, 1]")
    _check(h.max_rollbacks >= 0, where, "health.max_rollbacks must be >= 0")
    _check(h.watch_every >= 0, where, "health.watch_every must be >= 0 (0 = off)")
    _check(0.5 < h.watch_d_acc <= 1, where, f"health.watch_d_acc={h.watch_d_acc} must be in (0.5, 1]")
    if t.on_collapse != "warn":
        _check(h.every_steps > 0, where, f"train.on_collapse={t.on_collapse} acts on the health checks: "
                                         "set health.every_steps (e.g. 500)")
    _check(t.on_collapse != "rollback" or bool(t.keep_best), where,
           "train.on_collapse=rollback returns to the best checkpoint: set train.keep_best "
           "(e.g. fid, or coverage)")


def architecture_diff(old: dict, new: dict) -> list[str]:
    """The ARCHITECTURE_KEYS whose values differ between two config dicts, as 'key: old -> new'."""
    defaults = flatten(to_dict(Config()))  # keys added since `old` was written take their defaults
    fo, fn = _resolve_nets({**defaults, **flatten(old)}), _resolve_nets({**defaults, **flatten(new)})
    return [f"{k}: {fo.get(k)!r} -> {fn.get(k)!r}" for k in ARCHITECTURE_KEYS if fo.get(k) != fn.get(k)]


def _resolve_nets(flat: dict) -> dict:
    """model.G / model.D as the net names they stand for."""
    return {**flat, "model.G": _net(flat["model.G"], flat["model.arch"]), "model.D": _net(flat["model.D"], flat["model.arch"])}


def _net(name: str, arch: str) -> str:
    return name or arch  # "" means model.arch


def net_names(cfg: Config) -> tuple[str, str]:
    """(G's net, D's net): model.G / model.D, or model.arch where they are empty."""
    return _net(cfg.model.G, cfg.model.arch), _net(cfg.model.D, cfg.model.arch)
