"""``task: adain``: the decoder of AdaIN style transfer (Huang & Belongie, ICCV 2017).

The encoder is ``adain.network`` to relu4_1, frozen (``stlpips_vgg16`` offline: VGG16's relu4_1,
the same depth and width as VGG19's relu4_1 that the paper uses). Each sample pairs a content
crop of ``data.train`` with a style crop of ``adain.styles``; the loss is the content term
``|f(g(t)) - t|^2`` plus ``style_weight`` times the mean/std matches at relu1_1..relu4_1, each
divided by its target's energy and with the pixels' mean/std added under the ``relative``
objective (what ``auto`` picks for the offline trunk; ``published`` is the paper's sum)::

    name: adain_decoder
    task: adain
    arch: adain_decoder
    scale: 1
    data: {train: ["${SRKIT_DATA}/sr/train/T91"], batch_size: 4}
    optimizers: {g: {lr: 1.0e-4}}
    train: {iters: 2000}
    adain:
      styles: ["${SRKIT_DATA}/style/styles"]
      image_size: 256
      objective: auto
      style_weight: 1        # default: 1 (relative), 10 (published, the paper's)
      width: 1               # 1: the published channel counts; 2 or 4 divide them
      identity_warmup: 0     # first N iterations: decode the content's own features, L1

The exported decoder (purpose ``style``) is what ``srkit style adain --model`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srkit.features import feature_network
from srkit.style import AdainDecoder, AdainModel, adain_losses
from srkit.style.core import fit_size, save_style_model
from srkit.style.objective import objective_name
from srkit.train.batch import Batch
from srkit.train.data import ImageCache
from srkit.train.task import ExportRecord, Task, cpu_copy
from srkit.train.tasks.style import ContentCrops, content_cache, identity_step

#: the default style weight of each objective
ADAIN_STYLE_WEIGHTS = {"published": 10.0, "relative": 1.0}


class PairedCrops(torch.utils.data.Dataset):
    """``{"lr": content crop, "hr": style crop}`` drawn independently for each key."""

    def __init__(self, content: ContentCrops, style: ContentCrops) -> None:
        self.content, self.style = content, style

    def __len__(self) -> int:
        return len(self.content)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        return {"lr": self.content[key]["lr"], "hr": self.style[key]["lr"]}


class AdainTask(Task):
    name = "adain"
    purpose = "style"

    @dataclass
    class Options:
        styles: list[str] = field(default_factory=list)  # folders, globs or zips of style images
        network: str = "stlpips_vgg16"
        image_size: int = 256
        objective: str = "auto"  # relative (offline trunk) | published (ImageNet VGG)
        style_weight: float | None = None  # None: 1 (relative), 10 (published)
        width: int = 1
        output: str = "tanh"  # bounded to [0, 1]; "linear" as published
        identity_warmup: int = 0  # first iterations: decode the content's own features (L1)

        def __post_init__(self) -> None:
            if not self.styles:
                raise ValueError("adain.styles: name at least one style image or folder")
            self.objective = objective_name(self.objective, self.network)
            if self.style_weight is None:
                self.style_weight = ADAIN_STYLE_WEIGHTS[self.objective]
            if self.identity_warmup < 0:
                raise ValueError("adain.identity_warmup must be >= 0")
            if self.image_size < 16 or self.style_weight < 0 or self.width < 1:
                raise ValueError("adain: image_size >= 16, style_weight >= 0, width >= 1")

    def batch_fields(self) -> set[str]:
        return {"lr", "hr"}

    def build(self, resuming: bool) -> None:
        encoder = feature_network(self.options.network)
        if "relu4_1" not in encoder.layer_names:
            raise ValueError(f"adain.network {encoder.name} has no relu4_1")
        decoder = AdainDecoder(encoder.channels("relu4_1"), self.options.width, self.options.output)
        self.networks["g"] = decoder.to(self.ctx.device)
        self.model = AdainModel(encoder.to(self.ctx.device), self.networks["g"])
        self.add_optimizer("g")

    def dataset(self) -> torch.utils.data.Dataset:
        size, seed, show = self.options.image_size, self.config.seed, self.ctx.show_progress
        styles = ImageCache.load(self.options.styles, min_side=size, show_progress=show)
        return PairedCrops(
            ContentCrops(content_cache(self.config, size, show), size, seed),
            ContentCrops(styles, size, seed + 1),
        )

    def step(self, batch: Batch, iteration: int) -> dict[str, torch.Tensor]:
        self.model.decoder = self.ctx.models["g"]
        if iteration < self.options.identity_warmup:
            x = batch.lr

            def decode_own_features() -> torch.Tensor:
                with torch.no_grad():
                    features = self.model.encode(x)
                return fit_size(self.model.decoder(features), *x.shape[-2:])

            return identity_step(self.ctx, decode_own_features, x)
        with self.ctx.autocast():
            loss, parts = adain_losses(
                self.model, batch.lr, batch.hr, self.options.style_weight,
                relative=self.options.objective == "relative",
            )  # fmt: skip
        self.ctx.backward_step("g", loss)
        return {"loss": loss.detach(), **parts}

    def export(
        self,
        nets: dict[str, nn.Module],
        path: Path,
        name: str,
        scores: dict[str, Any],
        record: ExportRecord,
    ) -> Path:
        decoder = nets["g"]
        manifest = {
            "name": name,
            "arch": "adain_decoder",
            "options": {
                "channels": decoder.channels,
                "width": decoder.width,
                "output": decoder.output,
            },
            "purpose": self.purpose,
            "encoder": self.options.network,
            "objective": self.options.objective,
            "training_recipe": record.training_recipe(
                self.config, list(self.config.data.train) + list(self.options.styles)
            ),
        }
        return save_style_model(cpu_copy(decoder), path, manifest)
