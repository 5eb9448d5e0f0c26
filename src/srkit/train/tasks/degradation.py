"""``task: degradation``: learn an unknown camera's degradation from unpaired images (the
High-to-Low GAN of Bulat, Yang and Tzimiropoulos, ECCV 2018; :mod:`srkit.archs.bulat`).

The generator ``g`` is an H2L (``arch: h2l``): clean HR patches of ``data.train`` (side
``data.lr_patch * 4``) plus noise in, LR patches out. The discriminator ``d`` (one of
:mod:`srkit.archs.discriminators`, a small PatchGAN by default) reads real LR crops of
``degradation.lr_data`` (side ``data.lr_patch``; the images of the camera, no HR needed) against
the generated ones. The generator's loss is ``losses.g`` (pixel terms) between the *low-passed*
generated LR and the low-passed downscaled HR (``data.degradation``, MATLAB bicubic by default),
which keeps content and colours while leaving the high frequencies (noise, blur, ringing) to the
adversarial term, plus ``adversarial_weight`` times the adversarial loss of ``kind``::

    name: camera_h2l
    task: degradation
    arch: h2l
    scale: 4
    data: {train: ["${SRKIT_DATA}/sr/train/T91"], lr_patch: 16, batch_size: 16}
    optimizers:
      g: {lr: 2.0e-4, betas: [0.5, 0.999]}
      d: {lr: 2.0e-4, betas: [0.5, 0.999]}
    losses:
      g: [{name: l1}]          # on the low-passed LR (target hr: the low-passed downscaled HR)
    degradation:
      lr_data: ["${SRKIT_DATA}/sr/unpaired-camera-x4"]
      discriminator: {arch: patchgan, options: {features: 32, layers: 2}}
      kind: hinge              # vanilla | lsgan | hinge | wgan_gp | ragan
      adversarial_weight: 0.05 # the paper's beta (its pixel weight alpha is 1)
      lowpass_sigma: 1.0       # Gaussian blur (LR pixels) before the pixel loss; 0: none
      d_highpass: 0.0          # the discriminator sees x - blur(x) at this sigma; 0: all of x
      quantize: true           # straight-through 8-bit rounding of the generated LR
      jpeg: auto               # auto: the real LR's own JPEG; off; range: jpeg_quality

JPEG: a convolutional H2L cannot place JPEG's 8 x 8 block grid, so the JPEG of the real LR is
not left to the GAN. With ``jpeg: auto`` (the default) the task reads the quantization tables of
the ``lr_data`` files (:mod:`srkit.image.jpeg`); when every file is an IJG-encoder JPEG, each
generated LR goes through a real JPEG round trip at a quality drawn uniformly from the files'
range (straight-through in the backward pass), and the real crops start on the 8-pixel block
grid, as the generated ones do. ``jpeg: range`` uses ``jpeg_quality`` instead; ``off`` never
compresses. The H2L file records the range (``jpeg_quality`` in its manifest), so ``srkit
degrade apply`` and the blind tasks make the same JPEG.

Batches carry ``hr`` (HR patches), ``lr`` (their downscale: the pixel loss's target) and
``unpaired_lr`` (real LR crops, drawn independently: the data is unpaired). Validation (every
``val.every``) measures the match statistics (:mod:`srkit.metrics.lr_stats`) of LR generated
from the first ``val_images`` HR images against the first ``val_images`` real LR images and logs
them; there is no PSNR to measure, so no ``_best`` export is made. The export is an srkit weights
file of the H2L (:func:`save_h2l`): ``arch: h2l``, ``scale: 4`` (its downscaling factor),
``direction: hr_to_lr``, purpose ``blind``; upscalers refuse it, ``srkit degrade apply`` and
``task: blind_sr`` read it (:func:`load_h2l`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from srkit.archs.bulat import DEGRADERS, H2L, build_degrader, gaussian_lowpass
from srkit.archs.discriminators import build_discriminator
from srkit.archs.registry import count_params
from srkit.common.files import write_bytes_atomic, write_text_atomic
from srkit.data.degrade import jpeg_roundtrip
from srkit.data.sources import open_source
from srkit.image.jpeg import quality_range, soft_jpeg
from srkit.losses import WeightedLoss, check_terms
from srkit.losses.adversarial import ADVERSARIAL, adversarial_loss
from srkit.metrics.lr_stats import set_statistics
from srkit.train.batch import Batch
from srkit.train.data import ImageCache, PatchDataset
from srkit.train.task import ExportRecord, Task, cpu_copy
from srkit.train.tasks.gan import (
    DiscriminatorConfig,
    check_discriminator,
    discriminator_steps,
    generator_adversarial,
)
from srkit.train.tasks.supervised import make_degradation
from srkit.weights.errors import WeightsError
from srkit.weights.native import (
    DEGRADATION_ARCHS,
    FORMAT,
    VERSION,
    manifest_path,
    read_manifest,
    read_safetensors,
    sha256_file,
    weights_file,
)

DIRECTION = "hr_to_lr"


# --- the H2L's weight file ------------------------------------------------------------------


def save_h2l(
    net: H2L,
    path: str | Path,
    *,
    options: dict[str, Any],
    name: str | None = None,
    training_recipe: dict[str, Any] | None = None,
    scores: dict[str, Any] | None = None,
    jpeg_quality: tuple[int, int] | list[int] | None = None,
) -> Path:
    """``path`` (.safetensors) + ``path.json``: an srkit manifest with ``arch: h2l``,
    ``scale: 4``, ``direction: hr_to_lr``, purpose ``blind`` and the JPEG quality range its LR
    get (``jpeg_quality``, ``null``: none); returns the manifest's path."""
    from safetensors.torch import save

    spec = DEGRADERS["h2l"]
    opts = spec.options(**options)
    base = Path(path)
    if base.suffix in (".json", ".safetensors"):
        base = base.with_suffix("")
    weights = base.with_suffix(".safetensors")
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    write_bytes_atomic(weights, save(tensors))
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "name": name or base.name,
        "arch": spec.name,
        "options": opts,
        "scale": net.scale,
        "direction": DIRECTION,
        "purpose": "blind",
        "jpeg_quality": list(jpeg_quality) if jpeg_quality else None,
        "params": count_params(net),
        "input_convention": spec.convention.to_dict(),
        "training_recipe": training_recipe or {},
        "scores": scores or {},
        "weights": weights.name,
        "sha256": sha256_file(weights),
    }
    return write_text_atomic(base.with_suffix(".json"), json.dumps(manifest, indent=2) + "\n")


def load_h2l(path: str | Path) -> tuple[H2L, dict[str, Any]]:
    """The H2L of an srkit file (``.safetensors`` or ``.json``) in eval mode, and its manifest;
    the weights are checked against the manifest's sha256. Errors are ``ValueError`` naming the
    file."""
    mpath = manifest_path(path)
    if not mpath.is_file():
        raise ValueError(f"{path}: no such H2L model (needs {mpath.name} beside the weights)")
    try:
        manifest = read_manifest(mpath)
        if manifest["arch"] not in DEGRADATION_ARCHS:
            raise WeightsError(
                f"{mpath}: a {manifest['arch']} model, not a learned degradation "
                f"({', '.join(DEGRADATION_ARCHS)}; `srkit degrade learn` makes one)"
            )
        state = read_safetensors(weights_file(mpath, manifest))
        net = build_degrader(manifest["arch"], **manifest["options"])
        net.load_state_dict(state)
    except (WeightsError, TypeError, ValueError, RuntimeError) as error:
        if isinstance(error, WeightsError):
            raise ValueError(str(error).splitlines()[0]) from None
        raise ValueError(
            f"{mpath}: not a readable H2L model ({str(error).splitlines()[0]})"
        ) from None
    quality = manifest.get("jpeg_quality")
    if quality is not None and not (
        isinstance(quality, list) and len(quality) == 2
        and all(isinstance(q, int) and 1 <= q <= 100 for q in quality) and quality[0] <= quality[1]
    ):  # fmt: skip
        raise ValueError(f"{mpath}: jpeg_quality must be null or [low, high] in 1..100")
    return net.eval(), manifest


def draw_qualities(
    quality: tuple[int, int] | list[int] | None, rng: np.random.Generator, n: int
) -> list[int] | None:
    """``n`` JPEG qualities drawn uniformly (integers) from ``quality``'s range; ``None``
    when there is no JPEG."""
    if not quality:
        return None
    low, high = int(quality[0]), int(quality[1])
    return [int(q) for q in rng.integers(low, high + 1, size=n)]


def apply_jpeg(lr: torch.Tensor, qualities: list[int] | None) -> torch.Tensor:
    """Each LR of ``(N, 3, h, w)`` through a real JPEG round trip at its quality (Pillow,
    4:2:0); ``qualities`` None returns ``lr``. When ``lr`` needs gradients they are those of
    :func:`srkit.image.jpeg.soft_jpeg`, a differentiable model of the same encoder (a plain
    straight-through gradient lets the generator add detail the JPEG removes, without end)."""
    if qualities is None:
        return lr
    if len(qualities) != lr.shape[0]:
        raise ValueError(f"{len(qualities)} JPEG qualities for {lr.shape[0]} images")
    with torch.no_grad():
        coded = torch.stack(
            [
                jpeg_roundtrip(x.detach().float().cpu(), q)
                for x, q in zip(lr, qualities, strict=True)
            ]
        ).to(device=lr.device, dtype=lr.dtype)
    if not lr.requires_grad:
        return coded
    soft = soft_jpeg(lr.float(), qualities).to(lr.dtype)
    return soft + (coded - soft).detach()


@torch.no_grad()
def degrade_tensor(
    net: H2L,
    hr: torch.Tensor,
    noise: torch.Tensor | None = None,
    quantize: bool = True,
    qualities: list[int] | None = None,
) -> torch.Tensor:
    """HR ``(N, 3, H, W)`` in [0, 1] (sides multiples of 4) -> LR, clamped to [0, 1] and
    rounded to 8-bit levels when ``quantize`` (as a saved LR image is), then through a JPEG at
    ``qualities[i]`` (one per image; None: no JPEG)."""
    lr = net(hr, noise).float().clamp(0, 1)
    lr = torch.round(lr * 255) / 255 if quantize else lr
    return apply_jpeg(lr, qualities)


# --- data -------------------------------------------------------------------------------


def lr_crop_rng(seed: int, iteration: int, index: int) -> np.random.Generator:
    """The real-LR crop's own stream, apart from the HR patch's (``sample_rng``)."""
    return np.random.default_rng([seed, iteration, index, 1])


class UnpairedDataset(torch.utils.data.Dataset):
    """HR patches (and their downscale) with independent random crops of real LR images:
    ``{"lr", "hr", "unpaired_lr"}``, keyed by ``(iteration, index)``."""

    def __init__(
        self, patches: PatchDataset, real: ImageCache, size: int, seed: int, grid: int = 1
    ) -> None:
        self.patches, self.real, self.size, self.seed = patches, real, size, seed
        self.grid = grid  # crop corners on multiples of this (8: JPEG's block grid)

    def __len__(self) -> int:
        return len(self.patches)

    def real_crop(self, key: tuple[int, int]) -> torch.Tensor:
        rng = lr_crop_rng(self.seed, *key)
        image = self.real.images[int(rng.integers(len(self.real)))]
        height, width = image.shape[:2]
        top = int(rng.integers((height - self.size) // self.grid + 1)) * self.grid
        left = int(rng.integers((width - self.size) // self.grid + 1)) * self.grid
        crop = np.ascontiguousarray(image[top : top + self.size, left : left + self.size])
        x = torch.from_numpy(crop).permute(2, 0, 1).float() / 255.0
        if self.grid > 1:  # a mirror would move the block grid of a width not divisible by 8
            return x
        return x.flip(-1).contiguous() if rng.random() < 0.5 else x

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        return {**self.patches[key], "unpaired_lr": self.real_crop(key)}


def straight_through_quantize(x: torch.Tensor) -> torch.Tensor:
    """8-bit rounding in the forward pass, identity in the backward pass."""
    return x + (torch.round(x.clamp(0, 1) * 255) / 255 - x).detach()


def _default_discriminator() -> DiscriminatorConfig:
    return DiscriminatorConfig("patchgan", {"features": 32, "layers": 2})


def _first_images(specs: list[str], count: int, min_side: int) -> list[np.ndarray]:
    images: list[np.ndarray] = []
    for spec in specs:
        with open_source(spec) as source:
            for name in source.names:
                rgb = source.read(name).to_rgb8()
                if min(rgb.shape[:2]) >= min_side:
                    images.append(np.ascontiguousarray(rgb))
                if len(images) == count:
                    return images
    return images


class DegradationTask(Task):
    name = "degradation"
    network_names = ("g", "d")

    @dataclass
    class Options:
        lr_data: list[str] = field(default_factory=list)  # folders/zips/globs of real LR
        discriminator: DiscriminatorConfig = field(default_factory=_default_discriminator)
        kind: Literal["vanilla", "lsgan", "hinge", "wgan_gp", "ragan"] = "hinge"
        adversarial_weight: float = 0.05
        gp_weight: float = 10.0  # wgan_gp only
        d_steps: int = 1
        d_warmup: int = 0
        lowpass_sigma: float = 1.0  # in LR pixels
        # the discriminator judges x - lowpass(x) (sigma in LR pixels; 0: all of x): with an
        # H2L that keeps the low frequencies (keep_low), the sets' content colours are not
        # the generator's to match
        d_highpass: float = 0.0
        quantize: bool = True
        val_images: int = 8  # images of each side in the validation statistics
        val_size: int = 192  # HR centre crop of each validation image (multiple of 4)
        jpeg: Literal["auto", "off", "range"] = "auto"  # auto: the lr_data files' own
        jpeg_quality: list[int] = field(default_factory=lambda: [75, 75])  # jpeg: range

        def __post_init__(self) -> None:
            if not self.lr_data:
                raise ValueError("degradation.lr_data: name the real LR images (folders, zips)")
            if min(self.adversarial_weight, self.gp_weight, self.lowpass_sigma,
                   self.d_highpass) < 0:  # fmt: skip
                raise ValueError("degradation: weights, lowpass_sigma, d_highpass must be >= 0")
            if self.d_steps < 1 or self.d_warmup < 0:
                raise ValueError("degradation: d_steps >= 1 and d_warmup >= 0 are required")
            if self.val_images < 1 or self.val_size < 16 or self.val_size % 4:
                raise ValueError("degradation: val_images >= 1, val_size >= 16 and divisible by 4")
            q = self.jpeg_quality
            if len(q) != 2 or not all(1 <= v <= 100 for v in q) or q[0] > q[1]:
                raise ValueError(
                    "degradation.jpeg_quality: [low, high] with 1 <= low <= high <= 100"
                )

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if config.arch not in DEGRADERS:
            raise ValueError(
                f"task degradation trains a degradation network ({', '.join(DEGRADERS)}), "
                f"not {config.arch}"
            )
        if config.scale != 4:
            raise ValueError(f"task degradation: the H2L downscales by 4, got scale {config.scale}")
        DEGRADERS[config.arch].options(**config.arch_options)  # TypeError names the options
        if "d" in config.losses:
            raise ValueError(
                "losses.d: the discriminator's loss is degradation.kind "
                f"({', '.join(ADVERSARIAL)}); losses.g holds the generator's pixel terms"
            )
        check_terms(config.losses["g"], net_channels="rgb", fields={"lr", "hr"}, where="losses.g")
        check_discriminator(config.task_options.discriminator, config.data.lr_patch,
                            "degradation.discriminator", "LR patches (data.lr_patch)")  # fmt: skip

    def __init__(self, config, ctx) -> None:
        super().__init__(config, ctx)
        self.last_statistics: dict[str, Any] = {}
        self._jpeg: tuple[int, int] | None | str = "unset"

    @property
    def jpeg_range(self) -> tuple[int, int] | None:
        """The JPEG quality range the generated LR get (``None``: no JPEG); for ``jpeg: auto``
        read once from the ``lr_data`` files."""
        if self._jpeg == "unset":
            o = self.options
            if o.jpeg == "off":
                self._jpeg = None
            elif o.jpeg == "range":
                self._jpeg = (int(o.jpeg_quality[0]), int(o.jpeg_quality[1]))
            else:
                self._jpeg = _files_quality_range(o.lr_data)
                if self.ctx.is_main:
                    found = (
                        f"JPEG quality {self._jpeg[0]}-{self._jpeg[1]}"
                        if self._jpeg
                        else "no IJG JPEG"
                    )
                    self.ctx.print(f"degradation: real LR files: {found}")
        return self._jpeg  # type: ignore[return-value]

    def batch_fields(self) -> set[str]:
        return {"lr", "hr", "unpaired_lr"}

    def build(self, resuming: bool) -> None:
        config, ctx, options = self.config, self.ctx, self.options
        g = build_degrader(config.arch, **config.arch_options).to(ctx.device)
        d = build_discriminator(options.discriminator.arch, **options.discriminator.options)
        d = d.to(ctx.device)
        if ctx.channels_last:
            g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
        self.networks["g"], self.networks["d"] = g, d
        self.add_optimizer("g")
        self.add_optimizer("d")
        self.adversarial = adversarial_loss(options.kind)
        self.criterion = WeightedLoss(
            config.losses["g"], net_channels="rgb", fields={"lr", "hr"}, where="losses.g"
        ).to(ctx.device)

    def dataset(self) -> torch.utils.data.Dataset:
        config, show = self.config, self.ctx.show_progress
        hr_cache = ImageCache.load(
            config.data.train,
            min_side=max(config.data.lr_patch * config.scale, config.data.min_size),
            show_progress=show,
            rescale=config.data.rescale,
        )
        patches = PatchDataset(
            hr_cache, config.scale, config.data.lr_patch, make_degradation(config.data.degradation),
            config.seed, flip=config.data.flip, rot90=config.data.rot90,
        )  # fmt: skip
        real = ImageCache.load(self.options.lr_data, min_side=config.data.lr_patch,
                               show_progress=show)  # fmt: skip
        grid = 8 if self.jpeg_range else 1
        return UnpairedDataset(patches, real, config.data.lr_patch, config.seed, grid=grid)

    def generate(self, hr: torch.Tensor, iteration: int) -> torch.Tensor:
        with self.ctx.autocast():
            fake = self.ctx.models["g"](hr).float()
        fake = straight_through_quantize(fake) if self.options.quantize else fake
        rng = np.random.default_rng([self.config.seed, iteration, self.ctx.rank, 3])
        return apply_jpeg(fake, draw_qualities(self.jpeg_range, rng, fake.shape[0]))

    def judged(self, lr: torch.Tensor) -> torch.Tensor:
        """What the discriminator sees of an LR batch: all of it, or its high-pass."""
        sigma = self.options.d_highpass
        return lr - gaussian_lowpass(lr, sigma) if sigma else lr

    def step(self, batch: Batch, iteration: int) -> dict[str, torch.Tensor]:
        ctx, options = self.ctx, self.options
        assert batch.hr is not None and batch.unpaired_lr is not None
        hr = batch.hr.contiguous(memory_format=ctx.memory_format)
        real = batch.unpaired_lr.contiguous(memory_format=ctx.memory_format)
        train_g = iteration >= options.d_warmup
        with torch.set_grad_enabled(train_g):
            fake = self.generate(hr, iteration)
        real, fake_d = self.judged(real), self.judged(fake)
        logs = discriminator_steps(ctx, self.adversarial, real, fake_d.detach(), options.d_steps,
                                   options.gp_weight)  # fmt: skip
        if not train_g:
            return logs
        d_net = self.networks["d"]
        d_net.requires_grad_(False)
        try:
            with ctx.autocast():
                sigma = options.lowpass_sigma
                target = Batch(lr=batch.lr, hr=gaussian_lowpass(batch.lr, sigma))
                pixel, parts = self.criterion(gaussian_lowpass(fake, sigma), target)
                adversarial = generator_adversarial(self.adversarial, d_net, fake_d, real)
                loss = pixel + options.adversarial_weight * adversarial
            ctx.backward_step("g", loss)
        finally:
            d_net.requires_grad_(True)
        return {"loss": loss.detach(), "pixel": pixel.detach(),
                "adversarial": adversarial.detach(), **parts, **logs}  # fmt: skip

    # --- validation: match statistics, no PSNR ------------------------------------------
    def _validation_sets(self) -> tuple[list[np.ndarray], list[torch.Tensor]]:
        """The first ``val_images`` real LR images, and HR centre crops of the first
        ``val_images`` training images (at most ``val_size`` a side, multiples of 4)."""
        if not hasattr(self, "_val"):
            o = self.options
            real = _first_images(o.lr_data, o.val_images, 8)
            hr = []
            for image in _first_images(self.config.data.train, o.val_images, 32):
                h, w = (min(o.val_size, side) // 4 * 4 for side in image.shape[:2])
                top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
                crop = np.ascontiguousarray(image[top : top + h, left : left + w])
                hr.append(torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0)
            self._val = (real, hr)
        return self._val

    def validate(self, nets: dict[str, nn.Module], iteration: int) -> dict[str, dict[str, Any]]:
        real, hr = self._validation_sets()
        if not real or not hr:
            return {}
        net = cpu_copy(nets["g"]).eval()
        generator = torch.Generator().manual_seed(self.config.seed)
        rng = np.random.default_rng(self.config.seed)
        fake = []
        for x in hr:
            noise = net.draw_noise(1, *x.shape[-2:], generator=generator)
            lr = degrade_tensor(net, x, noise, qualities=draw_qualities(self.jpeg_range, rng, 1))[0]
            fake.append((lr.permute(1, 2, 0) * 255).round().byte().numpy())
        a, b = set_statistics(real), set_statistics(fake)
        keys = ("noise", "laplacian_var", "hf_ratio", "saturation")
        result = {f"{k}_real": round(a[k].mean, 4) for k in keys}
        result.update({f"{k}_fake": round(b[k].mean, 4) for k in keys})
        self.last_statistics = {"iteration": iteration, **result}
        return {"match": result}

    def export(
        self,
        nets: dict[str, nn.Module],
        path: Path,
        name: str,
        scores: dict[str, Any],
        record: ExportRecord,
    ) -> Path:
        config = self.config
        recipe = record.training_recipe(
            config, list(config.data.train), unpaired_lr=list(self.options.lr_data)
        )
        found = {"match_statistics": self.last_statistics} if self.last_statistics else {}
        return save_h2l(cpu_copy(nets["g"]), path, options=dict(config.arch_options), name=name,
                        training_recipe=recipe, scores=found,
                        jpeg_quality=self.jpeg_range)  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        return {"last_statistics": self.last_statistics}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_statistics = state.get("last_statistics", {})


def _files_quality_range(specs: list[str]) -> tuple[int, int] | None:
    """The IJG JPEG quality range of every image of ``specs`` (None unless all are IJG
    JPEGs)."""

    def files():
        for spec in specs:
            with open_source(spec) as source:
                for name in source.names:
                    yield source.read_bytes(name)

    return quality_range(files())


def degradation_experiment(
    name: str,
    hr: list[str],
    lr: list[str],
    *,
    iters: int = 1000,
    batch_size: int = 16,
    patch: int = 64,
    lr_rate: float = 2e-4,
    adversarial_weight: float = 0.05,
    seed: int = 0,
    device: str = "auto",
    arch_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The stage mapping (as a YAML file holds it) of a ``degradation`` run: what
    ``srkit degrade learn`` writes to ``<run>/config.yaml`` and trains. ``patch`` is the HR
    patch side (a multiple of 4; the LR crops are ``patch / 4``)."""
    if patch % 4 or patch < 16:
        raise ValueError(f"--patch {patch}: the HR patch side must be a multiple of 4, >= 16")
    adam = {"lr": lr_rate, "betas": [0.5, 0.999]}
    return {
        "name": name,
        "task": "degradation",
        "arch": "h2l",
        "arch_options": {"keep_low": 1.5, **(arch_options or {})},  # no learned colour cast
        "scale": 4,
        "seed": seed,
        "data": {
            "train": list(hr),
            "lr_patch": patch // 4,
            "batch_size": batch_size,
            "workers": 0,
        },  # fmt: skip
        "val": {"every": max(1, min(500, iters))},
        "train": {
            "iters": iters,
            "checkpoint_every": max(1, min(250, iters)),
            "log_every": max(1, min(50, iters // 20)),
            "device": device,
            "grad_clip": 1.0,
        },
        "optimizers": {"g": dict(adam), "d": dict(adam)},
        "losses": {"g": [{"name": "l1"}]},
        "degradation": {
            "lr_data": list(lr),
            "adversarial_weight": adversarial_weight,
            "d_highpass": 1.5,  # judged on detail: colours are the HR's (keep_low)
        },
    }
