"""``task: face``: face super-resolution on aligned LFW faces, with pixel and identity losses.

The HR faces are the 128x128 ``facesr128`` crops of ``srkit faces eval`` (dlib detection, 5
landmarks, cp2tform similarity; :mod:`srkit.faces.trainset`), of the people of ``face.people``
(default ``peopleDevTrain.txt``: LFW's View 1 training people; a person of ``peopleDevTest.txt``
or ``pairsDevTest.txt`` is refused). ``face.val_people`` of those people are held out and scored
at every validation (Y-PSNR and identity distance on their faces), the rest are trained on.

Each sample is one face, flipped left-right with probability 1/2 (``data.flip``), its LR made by
MATLAB bicubic of the uint8 HR (``/scale``, rounded to uint8: the evaluation's LR) or by
``data.degradation``. Batches carry ``lr``, ``hr``, ``landmarks`` (dlib's 5 points in HR pixels,
mirrored with the face) and ``identity`` (the HR's 128-d dlib embedding, of the mirrored face for a
flipped sample), and ``heatmaps`` when a loss needs them (68 Gaussians from dlib's 68 points of the
HR, :mod:`srkit.faces.heatmaps`), so the ``losses.g`` terms may be pixel losses, ``identity``
(:mod:`srkit.faces.identity`) and ``attention`` (PFSRNet's facial attention)::

    name: face_x8_id
    task: face
    arch: repan_face
    scale: 8
    data: {train: ["${SRKIT_DATA}/faces/lfw/lfw-deepfunneled.zip"], batch_size: 16}
    train: {iters: 3000, ema: 0.999, checkpoint_every: 250}
    val: {every: 250}
    optimizers: {g: {lr: 5.0e-4, schedule: {name: cosine}}}
    losses:
      g:
        - {name: l1, weight: 5}
        - {name: identity, weight: 10}
    face: {people: peopleDevTrain.txt, val_people: 100, select: identity}

The exported model is a srkit weights file whose purpose is ``face``. The task lives in the faces
package (it uses the face embedder and the LFW training set); the training engine finds it by the
name ``face`` (:data:`srkit.train.tasks.TASK_PATHS`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from srkit.archs import get_spec
from srkit.archs.adapter import NetworkModel
from srkit.bench.protocol import matlab_bicubic_lr
from srkit.faces.embed import get_embedder
from srkit.faces.heatmaps import landmark_heatmaps
from srkit.faces.trainset import flip_landmarks, load_trainset
from srkit.image.resize import quantize_uint8
from srkit.losses import LOSSES, WeightedLoss, check_terms
from srkit.metrics.sr import psnr_ssim
from srkit.train.batch import Batch
from srkit.train.data import sample_rng
from srkit.train.task import ExportRecord, cpu_copy
from srkit.train.tasks.supervised import SupervisedTask, make_degradation, network_channels

__all__ = ["FaceCrops", "FaceTask", "split_faces", "split_people"]


def split_people(people: set[str], held_out: int, seed: int = 0) -> tuple[set[str], set[str]]:
    """``(train, validation)``: ``held_out`` people chosen by a hash of ``(seed, name)`` (stable
    whatever the order or the machine)."""
    ranked = sorted(people, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())
    val = set(ranked[:held_out])
    return people - val, val


def split_faces(
    names: list[str], held_out: int, seed: int, max_val: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` indices of faces named ``person/image``: the faces of
    :func:`split_people`'s held-out people (at most ``max_val``) and all the others."""
    _train, val = split_people({n.split("/")[0] for n in names}, held_out, seed)
    is_val = np.array([n.split("/")[0] in val for n in names])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)[:max_val]


class FaceCrops(torch.utils.data.Dataset):
    """Samples of aligned faces: ``{"lr", "hr", "landmarks", "identity"}`` per ``(it, index)``."""

    def __init__(
        self,
        hr: np.ndarray,
        landmarks: np.ndarray,
        embedding: np.ndarray,
        embedding_flip: np.ndarray,
        scale: int,
        seed: int,
        degradation=None,
        flip: bool = True,
        landmarks68: np.ndarray | None = None,
        heatmap_size: int = 32,
        heatmap_sigma: float = 1.0,
    ) -> None:
        self.hr = torch.from_numpy(np.ascontiguousarray(hr))  # (N, 3, H, W) uint8
        self.landmarks = torch.from_numpy(np.asarray(landmarks, dtype=np.float32))
        self.embedding = torch.from_numpy(np.asarray(embedding, dtype=np.float32))
        self.embedding_flip = torch.from_numpy(np.asarray(embedding_flip, dtype=np.float32))
        self.scale, self.seed, self.flip = scale, seed, flip
        self.degradation = degradation
        self.landmarks68 = None if landmarks68 is None else torch.from_numpy(
            np.asarray(landmarks68, dtype=np.float32)
        )  # fmt: skip
        self.heatmap_size, self.heatmap_sigma = heatmap_size, heatmap_sigma
        # the protocol's LR is deterministic: make it once (bicubic commutes with a mirror)
        self.lr = None
        if degradation is None or degradation.is_default:
            self.lr = torch.cat(
                [matlab_bicubic_lr(self.hr[i : i + 256], scale) for i in range(0, len(hr), 256)]
            )

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        iteration, index = key
        rng = sample_rng(self.seed, iteration, index)
        i = int(rng.integers(len(self.hr)))
        flipped = self.flip and rng.random() < 0.5
        hr = self.hr[i]
        if self.lr is not None:
            lr = self.lr[i]
        else:
            lr = self.degradation.apply_uint8(hr[None], self.scale, rng)[0]
        landmarks, identity = self.landmarks[i], self.embedding[i]
        points68 = None if self.landmarks68 is None else self.landmarks68[i]
        if flipped:
            hr, lr = hr.flip(-1), lr.flip(-1)
            landmarks = flip_landmarks(landmarks, hr.shape[-1])
            identity = self.embedding_flip[i]
            if points68 is not None:
                points68 = flip_landmarks(points68, hr.shape[-1])
        sample = {
            "lr": lr.float().div(255.0).contiguous(),
            "hr": hr.float().div(255.0).contiguous(),
            "landmarks": landmarks,
            "identity": identity,
        }
        if points68 is not None:
            sample["heatmaps"] = landmark_heatmaps(
                points68, hr.shape[-1], self.heatmap_size, self.heatmap_sigma
            )
        return sample


class FaceTask(SupervisedTask):
    name = "face"
    purpose = "face"

    @dataclass
    class Options:
        people: str = "peopleDevTrain.txt"  # LFW people list (beside the zip, or a path)
        val_people: int = 100  # held out of training, scored at every validation
        val_faces: int = 200  # at most this many of their faces are scored
        select: str = "psnr"  # what picks the best export: psnr, or identity (lowest distance)
        heatmap_size: int = 32  # landmark heatmaps (attention loss): side, Gaussian sigma
        heatmap_sigma: float = 1.0
        # PFSRNet's progressive training: the iterations at which each later stage starts
        # (e.g. [2000, 4000] for its three stages), each faded in over `fade` iterations
        progressive: list[int] | None = None
        fade: int = 0

        def __post_init__(self) -> None:
            if self.progressive is not None:
                starts = list(self.progressive)
                if not starts or starts[0] < 1 or starts != sorted(set(starts)):
                    raise ValueError(
                        "face.progressive: the increasing iterations at which stages 2, 3, ... "
                        f"start, each >= 1; got {self.progressive}"
                    )
            if self.fade < 0:
                raise ValueError(f"face.fade must be >= 0, got {self.fade}")
            if self.val_people < 1 or self.val_faces < 1:
                raise ValueError("face.val_people and face.val_faces must be >= 1")
            if self.select not in ("psnr", "identity"):
                raise ValueError(f"face.select: psnr or identity, got {self.select!r}")
            if self.heatmap_size < 4 or self.heatmap_sigma <= 0:
                raise ValueError("face.heatmap_size must be >= 4 and face.heatmap_sigma > 0")

    @classmethod
    def check_config(cls, config) -> None:
        super(SupervisedTask, cls).check_config(config)
        if len(config.data.train) != 1:
            raise ValueError("face: data.train names one LFW zip or folder")
        if 128 % config.scale:
            raise ValueError(f"face: the 128-pixel crops are not divisible by x{config.scale}")
        get_spec(config.arch)
        fields = {"lr", "hr", "landmarks", "identity", "heatmaps"}
        check_terms(config.losses["g"], net_channels="rgb", fields=fields, where="losses.g")

    def __init__(self, config, ctx) -> None:
        super().__init__(config, ctx)
        lr_side = 128 // config.scale
        size = self.convention.input_size
        if self.convention.channels != "rgb" or size not in (None, (lr_side, lr_side)):
            raise ValueError(
                f"face: {config.arch} must take RGB input of any size or of {lr_side}x{lr_side}"
            )
        self._val: dict[str, torch.Tensor] | None = None
        self._trainset = None
        self.early_criterion: WeightedLoss | None = None
        if self.options.progressive is not None:
            self._check_progressive(config)

    def _check_progressive(self, config) -> None:
        if not 0 < self.options.progressive[-1] < config.train.iters:
            raise ValueError(
                f"face.progressive: the last stage starts at {self.options.progressive[-1]}, "
                f"not within train.iters ({config.train.iters})"
            )
        # the unused later stages of an early iteration have no gradient (DDP must know)
        self.unused_parameters = True

    def build(self, resuming: bool) -> None:
        super().build(resuming)
        if self.options.progressive is not None:
            stages = len(self.options.progressive) + 1
            grown = getattr(self.networks["g"], "progressive_stages", None)
            if grown != stages:
                raise ValueError(
                    f"face.progressive: {self.config.arch} "
                    + (f"has {grown} stages" if grown else "does not grow in stages")
                    + f"; {stages - 1} start iterations give {stages}"
                )
            # before the last stage the output is smaller than the HR crop: the terms that read
            # only the HR (pixel, perceptual) train on the HR resized to it; the terms that judge
            # the whole face (landmarks, heatmaps, identity) wait for the last stage
            early = [t for t in self.config.losses["g"]
                     if not LOSSES[t.name].face and t.target == "hr"]  # fmt: skip
            if not early:
                raise ValueError(
                    "face.progressive: losses.g needs a pixel term for the early stages"
                )
            self.early_criterion = WeightedLoss(
                early, net_channels="rgb", where="losses.g (early stages)"
            ).to(self.ctx.device)

    def stage_at(self, iteration: int) -> tuple[int, float]:
        """The progressive stage and fade-in ``alpha`` of ``iteration``."""
        starts = self.options.progressive or []
        stage = 1 + sum(iteration >= start for start in starts)
        if stage == 1 or not self.options.fade:
            return stage, 1.0
        done = iteration - starts[stage - 2] + 1
        return stage, min(1.0, done / self.options.fade)

    def step(self, batch: Batch, iteration: int) -> dict[str, torch.Tensor]:
        if self.options.progressive is None:
            return super().step(batch, iteration)
        ctx = self.ctx
        stage, alpha = self.stage_at(iteration)
        last = stage == len(self.options.progressive) + 1
        convention = self.convention
        x = convention.to_network(network_channels(batch.lr, convention))
        x = x.contiguous(memory_format=ctx.memory_format)
        with ctx.autocast():
            out = ctx.models["g"](x, stage=stage, alpha=alpha).float()
            out = convention.from_network(out)
            if last:
                loss, parts = self.criterion(out, batch)
            else:
                hr = F.interpolate(batch.hr, size=out.shape[-2:], mode="area")
                loss, parts = self.early_criterion(out, dataclasses.replace(batch, hr=hr))
        ctx.backward_step("g", loss)
        return {"loss": loss.detach(), **parts, "stage": torch.tensor(float(stage)),
                "alpha": torch.tensor(alpha)}  # fmt: skip

    def _wants_heatmaps(self) -> bool:
        return any("heatmaps" in LOSSES[t.name].needs for t in self.config.losses["g"])

    def batch_fields(self) -> set[str]:
        fields = {"lr", "hr", "landmarks", "identity"}
        return fields | ({"heatmaps"} if self._wants_heatmaps() else set())

    def _faces(self):
        if self._trainset is None:
            self._trainset = load_trainset(
                self.options.people, self.config.data.train[0], progress=self.ctx.show_progress
            )
        return self._trainset

    def _split(self) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        return split_faces(self._faces().names, o.val_people, self.config.seed, o.val_faces)

    def training_people(self) -> set[str]:
        faces = self._faces()
        train_idx, _ = self._split()
        return {faces.names[i].split("/")[0] for i in train_idx}

    def dataset(self) -> FaceCrops:
        faces = self._faces()
        train_idx, _ = self._split()
        spec = self.config.data.degradation
        return FaceCrops(
            faces.hr[train_idx],
            faces.landmarks[train_idx],
            faces.embedding[train_idx],
            faces.embedding_flip[train_idx],
            self.config.scale,
            self.config.seed,
            degradation=None if spec is None else make_degradation(spec),
            flip=self.config.data.flip,
            landmarks68=faces.landmarks68[train_idx] if self._wants_heatmaps() else None,
            heatmap_size=self.options.heatmap_size,
            heatmap_sigma=self.options.heatmap_sigma,
        )

    def _validation_faces(self) -> dict[str, torch.Tensor]:
        if self._val is None:
            faces = self._faces()
            _, idx = self._split()
            hr = torch.from_numpy(np.ascontiguousarray(faces.hr[idx]))
            spec = self.config.data.degradation
            if spec is None:
                lr = matlab_bicubic_lr(hr, self.config.scale)
            else:
                deg = make_degradation(spec)
                lr = torch.cat(
                    [
                        deg.apply_uint8(hr[i : i + 1], self.config.scale,
                                        np.random.default_rng([self.config.seed, 7, i]))
                        for i in range(len(hr))
                    ]
                )  # fmt: skip
            self._val = {
                "hr": hr,
                "lr": lr,
                "landmarks": torch.from_numpy(faces.landmarks[idx]),
                "embedding": torch.from_numpy(faces.embedding[idx]),
            }
        return self._val

    def validate(self, nets: dict[str, nn.Module], iteration: int) -> dict[str, dict[str, Any]]:
        val = self._validation_faces()
        model = NetworkModel(cpu_copy(nets["g"]).eval(), self.config.scale, self.convention, "g")
        outs = []
        with torch.inference_mode():
            for i in range(0, len(val["lr"]), 50):
                out = model(val["lr"][i : i + 50].float() / 255.0)
                outs.append(quantize_uint8(out.double() * 255.0))
        sr = torch.cat(outs)
        p, s = psnr_ssim(sr, val["hr"], border=0)
        embedder = get_embedder()
        with torch.inference_mode():
            e = embedder(sr.float() / 255.0, val["landmarks"].double()).float()
        distance = (e - val["embedding"]).norm(dim=1)
        result = {
            "psnr": float(p.mean()),
            "ssim": float(s.mean()),
            "id_distance": float(distance.mean()),
            "n": len(sr),
        }
        if self.options.select == "identity":
            result["score"] = -result["id_distance"]
        return {f"lfw-{Path(self.options.people).stem}-val": result}

    def export(
        self,
        nets: dict[str, nn.Module],
        path: Path,
        name: str,
        scores: dict[str, Any],
        record: ExportRecord,
    ) -> Path:
        config = self.config
        faces = self._faces()
        recipe = record.training_recipe(
            config,
            training_people={
                "list": self.options.people,
                "images": faces.name,
                "people": len(self.training_people()),
                "held_out_for_validation": self.options.val_people,
            },
            initialised_from=self.initialised_from,
        )
        validation = {}
        if scores:
            validation["validation"] = {
                "data": f"{self.options.val_people} held-out people of {self.options.people}",
                "psnr": scores.get("psnr"),
                "ssim": scores.get("ssim"),
                "id_distance": scores.get("id_distance"),
            }
        return self.save_network(nets["g"], path, name, recipe, validation)
