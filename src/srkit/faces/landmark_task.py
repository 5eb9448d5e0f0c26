"""``task: landmarks``: distil dlib's 68-point predictor into srkit's heatmap network.

The faces are the aligned 128 x 128 training crops of ``task: face`` (the people of
``landmarks.people``, default ``peopleDevTrain.txt``; evaluation people are refused), with dlib's
68 points of each HR crop (computed once and cached, :mod:`srkit.faces.trainset`). Each sample is
one face under a random similarity transform (rotation within ``rotate`` degrees, scale within
``1 +- zoom``, shift within ``shift`` pixels; the points follow) and a left-right flip, and with
probability ``degrade`` blurred by a bicubic down- and up-scaling by 2, 4 or 8, so the network
also reads the soft faces an SR network produces early in training. The target is the 68
Gaussians of :func:`~srkit.faces.heatmaps.landmark_heatmaps` (a quarter of the crop's side, sigma
1); the loss is their mean squared error. ``landmarks.val_people`` people are held out and scored
at each validation by the normalised mean error (NME, inter-ocular) against dlib, on their crops
as they are and on bicubic x8 reconstructions::

    name: face_landmarks
    task: landmarks
    arch: heatmap_net
    scale: 1
    data: {train: ["${SRKIT_DATA}/faces/lfw/lfw-deepfunneled.zip"], batch_size: 16}
    train: {iters: 3000, ema: 0.999}
    optimizers: {g: {lr: 1.0e-3, schedule: {name: cosine, warmup: 100}}}
    landmarks: {features: 64, blocks: 4}

The export (purpose ``landmarks``, :func:`~srkit.faces.heatmapnet.save_heatmap_net`) is what the
``heatmap`` loss term loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from srkit.faces.heatmapnet import ARCH, HeatmapNet, heatmap_points, landmark_nme, save_heatmap_net
from srkit.faces.heatmaps import landmark_heatmaps
from srkit.faces.task import split_faces
from srkit.faces.trainset import flip_landmarks, load_trainset
from srkit.train.batch import Batch
from srkit.train.data import sample_rng
from srkit.train.task import ExportRecord, Task, cpu_copy

__all__ = ["LandmarkCrops", "LandmarkTask", "similarity_warp"]


def similarity_warp(
    image: torch.Tensor,
    points: torch.Tensor,
    angle: float,
    scale: float,
    shift: tuple[float, float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``image`` ``(C, H, W)`` and its ``points`` ``(K, 2)`` (pixels) rotated by ``angle``
    (radians) and scaled by ``scale`` about the centre, then shifted by ``shift`` pixels; the
    image is resampled bilinearly (borders replicated)."""
    _c, h, w = image.shape
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2])
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    forward = torch.tensor([[cos, -sin], [sin, cos]])
    moved = (points - centre) @ forward.T + centre + torch.tensor(shift)
    # each output pixel reads the input at the inverse transform
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")  # fmt: skip
    out = torch.stack([xs, ys], -1) - centre - torch.tensor(shift)
    src = out @ torch.linalg.inv(forward).T + centre
    grid = torch.stack([(2 * src[..., 0] + 1) / w - 1, (2 * src[..., 1] + 1) / h - 1], -1)
    warped = F.grid_sample(image[None], grid[None], mode="bilinear", padding_mode="border",
                           align_corners=False)[0]  # fmt: skip
    return warped, moved


def soften(image: torch.Tensor, factor: int) -> torch.Tensor:
    """``(N, C, H, W)`` down-scaled by ``factor`` (bicubic, anti-aliased) and back up (bicubic)."""
    h, w = image.shape[-2:]
    small = F.interpolate(image, size=(h // factor, w // factor), mode="bicubic",
                          antialias=True, align_corners=False)  # fmt: skip
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


class LandmarkCrops(torch.utils.data.Dataset):
    """``{"lr": augmented face, "heatmaps": its 68 targets, "landmarks": its 68 points}``."""

    def __init__(self, hr: np.ndarray, points68: np.ndarray, seed: int, options) -> None:
        self.hr = torch.from_numpy(np.ascontiguousarray(hr))  # (N, 3, H, W) uint8
        self.points = torch.from_numpy(np.asarray(points68, dtype=np.float32))
        self.seed, self.options = seed, options

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        iteration, index = key
        o = self.options
        rng = sample_rng(self.seed, iteration, index)
        i = int(rng.integers(len(self.hr)))
        image, points = self.hr[i].float().div(255.0), self.points[i]
        if rng.random() < 0.5:
            image, points = image.flip(-1), flip_landmarks(points, image.shape[-1])
        angle = math.radians(float(rng.uniform(-o.rotate, o.rotate)))
        scale = float(rng.uniform(1 - o.zoom, 1 + o.zoom))
        shift = (float(rng.uniform(-o.shift, o.shift)), float(rng.uniform(-o.shift, o.shift)))
        image, points = similarity_warp(image, points, angle, scale, shift)
        if rng.random() < o.degrade:
            image = soften(image[None], int(rng.choice([2, 4, 8])))[0]
        maps = landmark_heatmaps(points, image.shape[-1], image.shape[-1] // 4, o.sigma)
        return {"lr": image.contiguous(), "heatmaps": maps, "landmarks": points}


class LandmarkTask(Task):
    name = "landmarks"
    purpose = "landmarks"

    @dataclass
    class Options:
        people: str = "peopleDevTrain.txt"  # LFW people list (beside the zip, or a path)
        val_people: int = 100  # held out, scored at every validation
        val_faces: int = 300
        features: int = 64  # HeatmapNet width and depth
        blocks: int = 4
        sigma: float = 1.0  # target Gaussians, in heatmap pixels
        rotate: float = 15.0  # augmentation: degrees, relative zoom, pixels, P(blur)
        zoom: float = 0.1
        shift: float = 8.0
        degrade: float = 0.5

        def __post_init__(self) -> None:
            if self.val_people < 1 or self.val_faces < 1:
                raise ValueError("landmarks.val_people and landmarks.val_faces must be >= 1")
            if self.features < 1 or self.blocks < 0 or self.sigma <= 0:
                raise ValueError("landmarks: features >= 1, blocks >= 0, sigma > 0")
            if min(self.rotate, self.zoom, self.shift) < 0 or not 0 <= self.degrade <= 1:
                raise ValueError("landmarks: rotate, zoom, shift >= 0 and degrade in [0, 1]")

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if len(config.data.train) != 1:
            raise ValueError("landmarks: data.train names one LFW zip or folder")
        if config.arch != ARCH or config.scale != 1:
            raise ValueError(f"landmarks: arch {ARCH}, scale 1 (got {config.arch} x{config.scale})")

    def __init__(self, config, ctx) -> None:
        super().__init__(config, ctx)
        self._trainset = None
        self._val: dict[str, torch.Tensor] | None = None

    def batch_fields(self) -> set[str]:
        return {"lr", "heatmaps", "landmarks"}

    def build(self, resuming: bool) -> None:
        net = HeatmapNet(68, self.options.features, self.options.blocks)
        self.networks["g"] = net.to(self.ctx.device)
        self.add_optimizer("g")

    def _faces(self):
        if self._trainset is None:
            self._trainset = load_trainset(
                self.options.people, self.config.data.train[0], progress=self.ctx.show_progress
            )
        return self._trainset

    def _split(self) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        return split_faces(self._faces().names, o.val_people, self.config.seed, o.val_faces)

    def dataset(self) -> LandmarkCrops:
        faces = self._faces()
        train_idx, _ = self._split()
        return LandmarkCrops(
            faces.hr[train_idx], faces.landmarks68[train_idx], self.config.seed, self.options
        )

    def step(self, batch: Batch, iteration: int) -> dict[str, torch.Tensor]:
        with self.ctx.autocast():
            out = self.ctx.models["g"](batch.lr).float()
        loss = F.mse_loss(out, batch.heatmaps)
        self.ctx.backward_step("g", loss)
        return {"loss": loss.detach()}

    def _validation_faces(self) -> dict[str, torch.Tensor]:
        if self._val is None:
            faces = self._faces()
            _, idx = self._split()
            hr = torch.from_numpy(np.ascontiguousarray(faces.hr[idx])).float() / 255.0
            self._val = {"hr": hr, "points": torch.from_numpy(faces.landmarks68[idx]).float()}
        return self._val

    def validate(self, nets: dict[str, nn.Module], iteration: int) -> dict[str, dict[str, Any]]:
        val = self._validation_faces()
        net = cpu_copy(nets["g"]).eval()
        scores = {}
        with torch.inference_mode():
            for label, images in (("hr", val["hr"]), ("bicubic_x8", soften(val["hr"], 8))):
                points = torch.cat([heatmap_points(net(images[i : i + 64]), images.shape[-1])
                                    for i in range(0, len(images), 64)])  # fmt: skip
                scores[f"nme_{label}"] = float(landmark_nme(points, val["points"]).mean())
        scores["n"] = len(val["hr"])
        scores["score"] = -scores["nme_hr"]
        return {f"lfw-{Path(self.options.people).stem}-val": scores}

    def export(
        self,
        nets: dict[str, nn.Module],
        path: Path,
        name: str,
        scores: dict[str, Any],
        record: ExportRecord,
    ) -> Path:
        faces = self._faces()
        manifest = {
            "name": name,
            "teacher": "dlib shape_predictor_68_face_landmarks (face-recognition-models)",
            "input": "aligned facesr128 crop, RGB in [0, 1], sides multiples of 4",
            "training_recipe": record.training_recipe(
                self.config,
                training_people={
                    "list": self.options.people,
                    "images": faces.name,
                    "held_out_for_validation": self.options.val_people,
                },
            ),
        }
        if scores:
            manifest["scores"] = {
                "validation": {
                    "data": f"{self.options.val_people} held-out people of {self.options.people}",
                    **{k: v for k, v in scores.items() if k.startswith("nme")},
                }
            }
        return save_heatmap_net(cpu_copy(nets["g"]), path, manifest)
