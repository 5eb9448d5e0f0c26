"""Identity loss: how far the super-resolved face's identity embedding is from the HR's.

The embedding network is dlib's face-recognition ResNet ported to PyTorch
(:mod:`srkit.faces.dlib_resnet`), the same one ``srkit faces eval`` scores with, applied to the
150x150 dlib chip that a differentiable similarity warp cuts from the SR face at the HR's
landmarks (:func:`srkit.faces.align.face_chip`). The HR side is the batch's ``identity`` field
(precomputed embeddings), the landmarks its ``landmarks`` field, both in the SR image's pixels.

Because the loss and the metric share the network, a model can learn to please it rather than
restore the face: face tasks report landmark error, PSNR and a contact sheet beside it.

``metric: distance`` (default) is the mean Euclidean distance, dlib's own metric (0.6 is its
same-person threshold); ``metric: cosine`` is ``1 - cos``. The loss registry
(:data:`srkit.losses.LOSSES`) names this class by its module path, so ``srkit.losses`` stays below
the faces package::

    losses:
      g:
        - {name: l1, weight: 5}
        - {name: identity, weight: 10, options: {metric: distance}}
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.faces.align import face_chip
from srkit.faces.dlib_resnet import load_dlib_resnet

__all__ = ["IdentityLoss"]


class IdentityLoss(nn.Module):
    """``loss(sr, batch)``: embedding distance of ``sr`` (RGB in [0, 1]) to ``batch.identity``."""

    def __init__(self, metric: str = "distance", model: str | None = None) -> None:
        super().__init__()
        if metric not in ("distance", "cosine"):
            raise ValueError(f"identity loss: metric must be distance or cosine, got {metric!r}")
        self.metric = metric
        self.network = load_dlib_resnet(model).eval()
        for p in self.network.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> IdentityLoss:
        super().train(mode)
        self.network.eval()  # a fixed judge, whatever the trainer does
        return self

    def embed(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        chips = face_chip(images, landmarks.to(torch.float64), 150, 0.25).to(images.dtype)
        return self.network(chips)

    def forward(self, sr: torch.Tensor, batch) -> torch.Tensor:
        if batch.landmarks is None or batch.identity is None:
            raise ValueError("identity loss: the batch has no landmarks/identity")
        e = self.embed(sr, batch.landmarks).float()
        ref = batch.identity.to(e.dtype)
        if self.metric == "cosine":
            return (1 - nn.functional.cosine_similarity(e, ref, dim=1)).mean()
        return (e - ref).norm(dim=1).mean()
