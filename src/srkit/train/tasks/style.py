"""``task: style``: Johnson's feed-forward style network (a TransformerNet for one style).

The content images are ``data.train`` (square crops of ``style.image_size`` pixels, batch
``data.batch_size``); the loss network is ``style.network`` (:func:`srkit.features.feature_network`)
and the terms are ``style.objective`` (:mod:`srkit.style.objective`): ``published`` is
pytorch/examples ``fast_neural_style`` (content at relu2_2, Gram matrices at
relu1_2/2_2/3_3/4_3, weights 1e5 / 1e10, for an ImageNet VGG16); ``relative`` (what ``auto``
picks for the offline trunk) normalises each term by its target. ``content_weight`` and
``style_weight`` default to the objective's. Adam 1e-3::

    name: mosaic
    task: style
    arch: transformer_net
    scale: 1
    data: {train: ["${SRKIT_DATA}/sr/train/T91"], batch_size: 4}
    optimizers: {g: {lr: 1.0e-3}}
    train: {iters: 2000, checkpoint_every: 200}
    style:
      style: ${SRKIT_DATA}/style/styles/mosaic.jpg
      image_size: 256
      style_size: 256
      width: 32               # channels of the first conv (32 as published)
      objective: auto         # relative (offline trunk) or published (ImageNet VGG)
      tv_weight: 0            # squared total variation (Johnson et al.'s TV regulariser)
      colour_weight: 0        # MSE of the 4x4-averaged output and content (low frequencies)
      identity_warmup: 0      # first N iterations: L1 to the content only (start as identity)

The exported model is a ``.safetensors`` + JSON manifest whose purpose is ``style``
(``srkit style apply --model``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srkit.features import feature_network
from srkit.losses.perceptual import TotalVariationLoss
from srkit.style import OBJECTIVES, StyleObjective, TransformerNet, load_image
from srkit.style.core import save_style_model
from srkit.style.nets import check_output
from srkit.style.objective import objective_name, objective_weights
from srkit.train.batch import Batch
from srkit.train.data import ImageCache, sample_rng
from srkit.train.task import ExportRecord, Task, cpu_copy


class ContentCrops(torch.utils.data.Dataset):
    """Random square crops (with flips) of the cached images: ``{"lr": crop}``."""

    def __init__(self, cache: ImageCache, size: int, seed: int) -> None:
        self.cache, self.size, self.seed = cache, size, seed

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        iteration, index = key
        rng = sample_rng(self.seed, iteration, index)
        image = self.cache.images[int(rng.integers(len(self.cache)))]
        h, w = image.shape[:2]
        top, left = int(rng.integers(h - self.size + 1)), int(rng.integers(w - self.size + 1))
        crop = np.ascontiguousarray(image[top : top + self.size, left : left + self.size])
        x = torch.from_numpy(crop).permute(2, 0, 1).float() / 255.0
        if rng.random() < 0.5:
            x = x.flip(-1)
        return {"lr": x.contiguous()}


def identity_step(ctx, produce, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """One warm-up step of ``g``: L1 of ``produce()`` (its output, under autocast) to the
    content ``x`` alone, so the style terms later start from a copy of the photo."""
    with ctx.autocast():
        identity = (produce().float() - x).abs().mean()
    ctx.backward_step("g", identity)
    return {"loss": identity.detach(), "identity": identity.detach()}


def content_cache(config, size: int, show_progress: bool) -> ImageCache:
    return ImageCache.load(config.data.train, min_side=size, show_progress=show_progress)


class StyleTask(Task):
    name = "style"
    purpose = "style"

    @dataclass
    class Options:
        style: str = ""  # the style image
        network: str = "stlpips_vgg16"
        image_size: int = 256
        style_size: int = 256  # longer side of the style image
        objective: str = "auto"  # relative (offline trunk) | published (ImageNet VGG)
        content_weight: float | None = None  # None: the objective's
        style_weight: float | None = None
        width: int = 32
        blocks: int = 5
        output: str = "tanh"  # the paper's scaled tanh; "linear" as pytorch/examples
        tv_weight: float = 0.0  # squared total variation (the paper's TV regulariser)
        colour_weight: float = 0.0  # MSE of 4x4-average-pooled output and content
        identity_warmup: int = 0  # first iterations: L1 to the content only (start as identity)

        def __post_init__(self) -> None:
            if not self.style:
                raise ValueError("style.style: name the style image")
            if self.image_size < 16 or self.style_size < 16:
                raise ValueError("style.image_size and style.style_size must be >= 16")
            if self.width < 1 or self.blocks < 0:
                raise ValueError("style.width must be >= 1 and style.blocks >= 0")
            check_output(self.output)
            if self.identity_warmup < 0:
                raise ValueError("style.identity_warmup must be >= 0")
            if self.tv_weight < 0 or self.colour_weight < 0:
                raise ValueError("style.tv_weight and style.colour_weight must be >= 0")
            self.objective = objective_name(self.objective, self.network)
            self.content_weight, self.style_weight = objective_weights(
                OBJECTIVES[self.objective], self.content_weight, self.style_weight
            )

    def batch_fields(self) -> set[str]:
        return {"lr"}

    def build(self, resuming: bool) -> None:
        o = self.options
        self.networks["g"] = TransformerNet(o.width, o.blocks, o.output).to(self.ctx.device)
        self.add_optimizer("g")
        net = feature_network(o.network).to(self.ctx.device)
        style = load_image(o.style, o.style_size).to(self.ctx.device)
        self.terms = StyleObjective(net, style, OBJECTIVES[o.objective])
        self.tv = TotalVariationLoss("l2")

    def dataset(self) -> torch.utils.data.Dataset:
        size = self.options.image_size
        return ContentCrops(content_cache(self.config, size, self.ctx.show_progress), size,
                            self.config.seed)  # fmt: skip

    def step(self, batch: Batch, iteration: int) -> dict[str, torch.Tensor]:
        o, x = self.options, batch.lr
        if iteration < o.identity_warmup:
            return identity_step(self.ctx, lambda: self.ctx.models["g"](x), x)
        with self.ctx.autocast():
            y = self.ctx.models["g"](x).float()
            content = self.terms.content_loss(y, x)
            style = self.terms.style_loss(y)
        loss = o.content_weight * content + o.style_weight * style
        logged = {"content": content.detach(), "style": style.detach()}
        if o.tv_weight > 0:
            tv = self.tv(y)
            loss = loss + o.tv_weight * tv
            logged["tv"] = tv.detach()
        if o.colour_weight > 0:
            pool = nn.functional.avg_pool2d
            colour = nn.functional.mse_loss(pool(y, 4, ceil_mode=True), pool(x, 4, ceil_mode=True))
            loss = loss + o.colour_weight * colour
            logged["colour"] = colour.detach()
        self.ctx.backward_step("g", loss)
        return {"loss": loss.detach(), **logged}

    def export(
        self,
        nets: dict[str, nn.Module],
        path: Path,
        name: str,
        scores: dict[str, Any],
        record: ExportRecord,
    ) -> Path:
        o = self.options
        manifest = {
            "name": name,
            "arch": "transformer_net",
            "options": {"width": o.width, "blocks": o.blocks, "output": o.output},
            "purpose": self.purpose,
            "style_image": Path(o.style).name,
            "loss_network": o.network,
            "objective": o.objective,
            "training_recipe": record.training_recipe(self.config),
        }
        return save_style_model(cpu_copy(nets["g"]), path, manifest)


def style_experiment(
    task: str,
    name: str,
    data: list[str],
    *,
    iters: int,
    batch_size: int = 4,
    lr: float = 1e-3,
    checkpoint_every: int = 200,
    device: str = "auto",
    options: dict[str, Any],
) -> dict[str, Any]:
    """The stage mapping (as a YAML file would hold it) of a ``style`` or ``adain`` run: what
    ``srkit style train`` / ``train-adain`` write to ``<run>/config.yaml`` and train."""
    return {
        "name": name,
        "task": task,
        "arch": "transformer_net" if task == "style" else "adain_decoder",
        "scale": 1,
        "data": {"train": list(data), "batch_size": batch_size, "workers": 0},
        "optimizers": {"g": {"lr": lr}},
        "train": {
            "iters": iters,
            "checkpoint_every": checkpoint_every,
            "log_every": max(1, min(50, iters // 20)),
            "device": device,
        },
        task: options,
    }
