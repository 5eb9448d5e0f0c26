"""``task: blind_sr`` / ``task: blind_gan``: a Low-to-High network trained on pairs that a
learned degradation makes on the fly (Bulat, Yang and Tzimiropoulos, ECCV 2018, second stage).

Each HR patch of ``data.train`` goes through the frozen H2L of ``<task>.degradation_model`` (an
srkit H2L file from ``task: degradation`` / ``srkit degrade learn``) with its own noise draw,
seeded by ``(seed, iteration, index)`` like the rest of the sample; the LR it makes, clamped,
rounded to 8-bit levels and through the H2L's JPEG (its manifest's ``jpeg_quality``, a quality
per sample from the same seed), replaces the bicubic LR of the batch. The rest is the
supervised task (``blind_sr``: the pixel terms of ``losses.g``) or the GAN task (``blind_gan``:
the same plus a discriminator on HR, the ``gan`` options of :mod:`srkit.train.tasks.gan`)::

    name: camera_l2h
    task: blind_sr
    arch: l2h
    scale: 4
    data: {train: ["${SRKIT_DATA}/sr/train/T91"], lr_patch: 24, batch_size: 16}
    optimizers: {g: {lr: 5.0e-4, schedule: {name: cosine}}}
    losses: {g: [{name: l1}]}
    blind_sr:
      degradation_model: runs/camera_h2l/camera_h2l.safetensors

In a recipe, a blind stage may leave ``degradation_model`` out: the stage's ``init`` (by default
the previous stage, e.g. the ``degradation`` stage) is then the H2L; the recipe runner trains
that stage first and hands its output over. The network starts from scratch, or from
``start_model``: a shipped model's name (``repan_x4``: fine-tune the bicubic model on the
camera's pairs) or a weights file, copied tensor by tensor like ``init.path``.

Validation: there is no paired data of the camera, so the PSNR/SSIM of ``val.data`` (the bundled
Set5, bicubic LR) is a sanity check only. The export is an ordinary srkit SR model (purpose
``blind``) whose training recipe names the H2L file and its sha256.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srkit.train.batch import Batch
from srkit.train.config import ExperimentConfig, InitConfig
from srkit.train.task import ExportRecord
from srkit.train.tasks.degradation import degrade_tensor, draw_qualities, load_h2l
from srkit.train.tasks.gan import GanTask
from srkit.train.tasks.supervised import SupervisedTask, check_sha256
from srkit.weights.native import sha256_file


def noise_seed(seed: int, iteration: int, index: int) -> int:
    """The seed of sample ``(iteration, index)``'s H2L noise (its own stream)."""
    return int(np.random.default_rng([seed, iteration, index, 2]).integers(2**62))


def start_init(spec: str | None) -> InitConfig | None:
    """Where a blind stage's network starts (``start_model``): a shipped model's name (its
    weights, pinned by its manifest's sha256), a weights file, or None (from scratch)."""
    if spec is None:
        return None
    from srkit.zoo import find_model

    model = find_model(spec, None) if not Path(spec).suffix else None
    if model is not None:
        return InitConfig(path=str(model.weights_path), sha256=model.manifest["sha256"])
    if not Path(spec).is_file():
        raise ValueError(f"start_model {spec}: neither a shipped model nor a weights file")
    return InitConfig(path=spec)


class _LearnedDegradation:
    """What both blind tasks add to their base: the frozen H2L, and LR made by it."""

    config: ExperimentConfig

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)  # type: ignore[misc]
        if config.scale != 4:
            raise ValueError(
                f"task {config.task}: the learned degradations are x4, got {config.scale}"
            )

    def build(self, resuming: bool) -> None:
        options = self.options  # type: ignore[attr-defined]
        path, pinned = options.degradation_model, None
        if path is None and self.config.init is None:  # (a recipe sets init after parsing)
            raise ValueError(
                f"{self.config.task}.degradation_model: name the H2L file (`srkit degrade "
                "learn` or task degradation makes it), or give the stage an init (in a recipe: "
                "the degradation stage)"
            )
        if path is None:  # the stage's init is the H2L; the network starts from start_model
            path, pinned = self.config.init.path, self.config.init.sha256  # type: ignore[union-attr]
            self.config = dataclasses.replace(self.config, init=start_init(options.start_model))
        elif options.start_model is not None:
            if self.config.init is not None:
                raise ValueError(
                    f"{self.config.task}.start_model and init both say where the network starts"
                )
            self.config = dataclasses.replace(self.config, init=start_init(options.start_model))
        check_sha256(path, pinned)
        h2l, manifest = load_h2l(path)
        ctx = self.ctx  # type: ignore[attr-defined]
        self.h2l = h2l.to(ctx.device).requires_grad_(False)
        self.jpeg_quality = manifest.get("jpeg_quality")  # the H2L's JPEG, None: none
        self.degraded_by = {
            "path": str(path),
            "name": manifest.get("name"),
            "sha256": sha256_file(Path(path).with_suffix(".safetensors")),
            "jpeg_quality": self.jpeg_quality,
        }
        super().build(resuming)  # type: ignore[misc]

    def degrade(self, hr: torch.Tensor, iteration: int) -> torch.Tensor:
        ctx, seed = self.ctx, self.config.seed  # type: ignore[attr-defined]
        n, _, height, width = hr.shape
        offset = ctx.rank * n  # this rank's share of the global batch (BatchKeys)
        draws = []
        for j in range(n):
            generator = torch.Generator().manual_seed(noise_seed(seed, iteration, offset + j))
            draws.append(self.h2l.draw_noise(1, height, width, generator=generator))
        noise = torch.cat(draws).to(hr.device)
        flat = None
        if self.jpeg_quality:  # one quality per sample, from the sample's own stream
            rngs = [np.random.default_rng([seed, iteration, offset + j, 3]) for j in range(n)]
            flat = [draw_qualities(self.jpeg_quality, rng, 1)[0] for rng in rngs]  # type: ignore[index]
        return degrade_tensor(self.h2l, hr, noise, qualities=flat)

    def step(self, batch: Batch, iteration: int) -> dict[str, torch.Tensor]:
        assert batch.hr is not None
        batch.lr = self.degrade(batch.hr, iteration)
        return super().step(batch, iteration)  # type: ignore[misc]

    def export(
        self,
        nets: dict[str, nn.Module],
        path: Path,
        name: str,
        scores: dict[str, Any],
        record: ExportRecord,
    ) -> Path:
        record = dataclasses.replace(
            record, extra={**record.extra, "degraded_by": self.degraded_by}
        )
        return super().export(nets, path, name, scores, record)  # type: ignore[misc]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "degraded_by": self.degraded_by}  # type: ignore[misc]


class BlindSRTask(_LearnedDegradation, SupervisedTask):
    name = "blind_sr"
    purpose = "blind"

    @dataclass
    class Options(SupervisedTask.Options):
        degradation_model: str | None = None  # an H2L file; None: the stage's init
        start_model: str | None = None  # a shipped model or weights file the network starts from


class BlindGanTask(_LearnedDegradation, GanTask):
    name = "blind_gan"
    purpose = "blind"

    @dataclass
    class Options(GanTask.Options):
        degradation_model: str | None = None
        start_model: str | None = None
