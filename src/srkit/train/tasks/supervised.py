"""``task: supervised``: one network trained on (LR, HR) patches with weighted pixel losses.

LR patches come from the degradation pipeline (MATLAB bicubic by default, or a degradation YAML);
with ``teacher:`` set, batches also carry the teacher's output for the LR patch, and a loss term
with ``target: teacher`` distils it. The exported model is the network (its EMA when
``train.ema`` is set), re-parameterised into its inference form where the architecture has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from srkit.archs import InputConvention, build, get_spec
from srkit.archs.adapter import NetworkModel
from srkit.bench import evaluate_model
from srkit.config import from_dict
from srkit.data.degrade import Degradation, DegradationConfig
from srkit.image.color import rgb_to_y
from srkit.losses import WeightedLoss, check_terms
from srkit.train.batch import Batch
from srkit.train.data import ImageCache, PatchDataset
from srkit.train.task import ExportRecord, Task, cpu_copy
from srkit.weights import load, load_network, save_model
from srkit.weights.native import PURPOSES, sha256_file


def make_degradation(spec: str | dict | None) -> Degradation:
    if spec is None:
        return Degradation()
    if isinstance(spec, str):
        return Degradation.from_yaml(spec)
    return Degradation.from_config(from_dict(DegradationConfig, spec, where="data.degradation"))


def network_channels(x: torch.Tensor, convention: InputConvention) -> torch.Tensor:
    """RGB in [0, 1] -> the network's channels (Y for Y-only networks), still in [0, 1]."""
    return rgb_to_y(x) if convention.channels == "y" else x


def transfer_weights(net: nn.Module, path: str) -> tuple[list[str], list[str]]:
    """Copy the tensors of ``path`` whose names and shapes match; returns (loaded, skipped)."""
    source, *_ = load_network(path)
    theirs = source.state_dict()
    ours = net.state_dict()
    loaded, skipped = [], []
    for key, value in theirs.items():
        if key in ours and ours[key].shape == value.shape:
            ours[key] = value.clone()
            loaded.append(key)
        else:
            found = tuple(value.shape)
            expected = tuple(ours[key].shape) if key in ours else "absent"
            skipped.append(f"{key} {found} (ours: {expected})")
    skipped += [f"{key} (not in {Path(path).name})" for key in ours if key not in theirs]
    net.load_state_dict(ours)
    return loaded, skipped


def check_sha256(path: str, expected: str | None) -> None:
    """``init.sha256``: the weights file must be the one the recipe was written for."""
    if expected is None:
        return
    found = sha256_file(Path(path))
    if found != expected:
        raise ValueError(f"init.path {path}: sha256 is {found}, the config pins {expected}")


class SupervisedTask(Task):
    name = "supervised"
    purpose: ClassVar[str] = "general"  # what the exported model is for (srkit models lists it)

    @dataclass
    class Options:
        # HR pixels trimmed from each side of the output and target before the losses. The
        # pixels near a patch's cut edge see zero padding and (for nets that upscale first) a
        # bicubic input made without the neighbours beyond the cut, unlike almost every pixel of
        # a real image; SRCNN's valid convolutions left them out of its loss the same way.
        loss_crop: int = 0
        # what the exported model is for (srkit models groups by it); None: the task's own
        # (general here). A model trained on a real-world degradation preset says blind.
        purpose: str | None = None

        def __post_init__(self) -> None:
            if self.loss_crop < 0:
                raise ValueError(f"loss_crop must be >= 0, got {self.loss_crop}")
            if self.purpose is not None and self.purpose not in PURPOSES:
                raise ValueError(f"purpose {self.purpose!r}: one of {', '.join(PURPOSES)}")

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        hr_patch = config.data.lr_patch * config.scale
        if 2 * config.task_options.loss_crop >= hr_patch:
            raise ValueError(
                f"supervised.loss_crop must leave pixels of the {hr_patch}-pixel HR patch "
                f"(lr_patch x scale): got {config.task_options.loss_crop}"
            )
        spec = get_spec(config.arch)  # unknown architectures fail here, before any work
        channels = "y" if spec.convention.channels == "y" else "rgb"
        fields = {"lr", "hr"} | ({"teacher"} if config.teacher is not None else set())
        check_terms(config.losses["g"], net_channels=channels, fields=fields, where="losses.g")

    def __init__(self, config, ctx) -> None:
        super().__init__(config, ctx)
        self.convention = get_spec(config.arch).convention
        self.net_channels = "y" if self.convention.channels == "y" else "rgb"
        # what init.path really gave this run (None: from scratch); kept in checkpoints and
        # written into the manifest, so a manifest never claims a transfer that did not happen
        self.initialised_from: dict[str, Any] | None = None
        self.teacher = None

    def build(self, resuming: bool) -> None:
        config, ctx = self.config, self.ctx
        net = build(config.arch, scale=config.scale, **config.arch_options)
        if config.init is not None and not resuming:
            check_sha256(config.init.path, config.init.sha256)
            loaded, skipped = transfer_weights(net, config.init.path)
            if config.init.strict and skipped:
                raise ValueError(f"init.strict: {len(skipped)} tensors did not match: {skipped}")
            ctx.log({"init": config.init.path, "loaded": len(loaded), "skipped": skipped})
            self.initialised_from = {
                "path": config.init.path,
                "loaded": len(loaded),
                "skipped": len(skipped),
            }
            if ctx.is_main and skipped:
                ctx.print(f"weight transfer: {len(loaded)} tensors loaded, skipped: {skipped}")
        net = net.to(ctx.device)
        if ctx.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.networks["g"] = net
        self.add_optimizer("g")
        self.criterion = WeightedLoss(
            config.losses["g"],
            net_channels=self.net_channels,
            fields=self.batch_fields(),
            crop=getattr(self.options, "loss_crop", 0),
            where="losses.g",
        ).to(ctx.device)  # feature networks (perceptual, identity) run beside the generator
        if config.teacher is not None:
            self.teacher = load(
                config.teacher.model, scale=config.scale, arch=config.teacher.arch,
                device=str(ctx.device),
            )  # fmt: skip

    def batch_fields(self) -> set[str]:
        return {"lr", "hr"} | ({"teacher"} if self.config.teacher is not None else set())

    def dataset(self) -> PatchDataset:
        config = self.config
        cache = ImageCache.load(
            config.data.train,
            min_side=max(config.data.lr_patch * config.scale, config.data.min_size),
            show_progress=self.ctx.show_progress,
            rescale=config.data.rescale,
        )
        return PatchDataset(
            cache,
            config.scale,
            config.data.lr_patch,
            make_degradation(config.data.degradation),
            config.seed,
            flip=config.data.flip,
            rot90=config.data.rot90,
        )

    def step(self, batch: Batch, iteration: int) -> dict[str, torch.Tensor]:
        ctx, convention = self.ctx, self.convention
        x = convention.to_network(network_channels(batch.lr, convention))
        x = x.contiguous(memory_format=ctx.memory_format)
        with ctx.autocast():
            out = convention.from_network(ctx.models["g"](x).float())
            if self.teacher is not None:
                batch.teacher = self.teacher(batch.lr).clone()
            loss, parts = self.criterion(out, batch)
        ctx.backward_step("g", loss)
        return {"loss": loss.detach(), **parts}

    def validate(self, nets: dict[str, nn.Module], iteration: int) -> dict[str, dict[str, Any]]:
        config = self.config
        model = NetworkModel(cpu_copy(nets["g"]), config.scale, self.convention, config.name)
        scores = {}
        for spec in config.val.data:
            result = evaluate_model(model, spec, config.scale, convention=config.val.convention)
            scores[result.dataset] = {"psnr": result.psnr, "ssim": result.ssim, "n": result.n}
        return scores

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
            config,
            distilled_from=config.teacher.model if config.teacher else None,
            initialised_from=self.initialised_from,
        )
        validation = {}
        if scores:
            validation["validation"] = {
                "data": list(config.val.data),
                "convention": config.val.convention,
                "psnr": scores.get("psnr"),
                "ssim": scores.get("ssim"),
            }
        return self.save_network(nets["g"], path, name, recipe, validation)

    def save_network(
        self, net: nn.Module, path: Path, name: str, recipe: dict, scores: dict
    ) -> Path:
        """Write ``net`` as this task's model file; re-parameterised nets ship in their
        inference form (plain convolutions)."""
        config = self.config
        export_net = cpu_copy(net)
        options = dict(config.arch_options)
        if callable(getattr(export_net, "fuse", None)):
            export_net.fuse()
            options["fused"] = True
        return save_model(
            export_net,
            path,
            arch=config.arch,
            scale=config.scale,
            options=options,
            training_recipe=recipe,
            scores=scores,
            name=name,
            purpose=getattr(self.options, "purpose", None) or self.purpose,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"initialised_from": self.initialised_from}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.initialised_from = state.get("initialised_from")
