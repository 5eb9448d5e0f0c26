"""Losses on the features of a pretrained network, and total variation.

``lpips`` is LPIPS itself as a loss (:class:`LPIPSLoss`).

``network`` (every other feature loss): ``stlpips_vgg16`` (the default, offline),
``stlpips_alex``, or a torchvision ImageNet file ``vgg19:PATH`` / ``vgg16:PATH`` (see
:mod:`srkit.features`).
``layers`` maps layer names to weights: ``relu2_2`` is after the activation, ``conv5_4`` before
it (ESRGAN). Images are RGB in ``[0, 1]``. The feature network is frozen; gradients flow to the
generated image only::

    losses:
      g:
        - {name: l1, weight: 0.01}
        - {name: perceptual, weight: 1.0,
           options: {network: "vgg19:~/weights/vgg19-dcbb9e9d.pth", layers: {conv5_4: 1.0}}}
        - {name: tv, weight: 1.0e-6}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

from srkit.features import FeatureNet, feature_network, unit_features

DEFAULT_NETWORK = "stlpips_vgg16"


def _layer_weights(layers: Mapping[str, float] | list[str] | str) -> dict[str, float]:
    if isinstance(layers, str):
        return {layers: 1.0}
    if isinstance(layers, Mapping):
        weights = {str(k): float(v) for k, v in layers.items()}
    else:
        weights = dict.fromkeys(map(str, layers), 1.0)
    if not weights:
        raise ValueError("layers: name at least one layer")
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"layers: weights must be >= 0, got {weights}")
    return weights


class _FeatureLoss(nn.Module):
    def __init__(
        self,
        network: str | FeatureNet = DEFAULT_NETWORK,
        layers: Mapping[str, float] | list[str] | str = "relu5_3",
    ) -> None:
        super().__init__()
        self.net = feature_network(network) if isinstance(network, str) else network
        self.layer_weights = _layer_weights(layers)
        names = self.net.layer_names
        unknown = [layer for layer in self.layer_weights if layer not in names]
        if unknown:
            raise ValueError(
                f"{self.net.name} has no layer {', '.join(unknown)}; its layers: {', '.join(names)}"
            )

    def features(self, sr: torch.Tensor, hr: torch.Tensor):
        layers = list(self.layer_weights)
        fake = self.net(sr, layers)
        with torch.no_grad():
            real = self.net(hr, layers)
        return fake, real


class PerceptualLoss(_FeatureLoss):
    """Content loss on feature maps (Johnson et al. 2016; SRGAN, Ledig et al. 2017; ESRGAN,
    Wang et al. 2018): ``sum_l w_l * mean(|phi_l(sr) - phi_l(hr)|^p)``.

    ``criterion``: ``l1`` (ESRGAN) or ``l2`` (SRGAN's MSE). ``layers``: ``{name: weight}``; the
    default ``relu5_3`` exists in VGG16 trunks; ESRGAN uses ``{conv5_4: 1.0}`` of a VGG19.

    ``normalize``: divide each position's feature vector by its length first and sum the
    squared (``l2``) or absolute (``l1``) differences over channels, averaged over positions:
    with ``l2`` each layer's term is the unweighted LPIPS baseline (Zhang et al. 2018), which
    weighs every layer's features alike whatever their magnitude.
    """

    def __init__(
        self,
        network: str | FeatureNet = DEFAULT_NETWORK,
        layers: Mapping[str, float] | list[str] | str = "relu5_3",
        criterion: Literal["l1", "l2"] = "l1",
        normalize: bool = False,
    ) -> None:
        super().__init__(network, layers)
        if criterion not in ("l1", "l2"):
            raise ValueError(f"criterion must be l1 or l2, got {criterion!r}")
        self.criterion = criterion
        self.normalize = bool(normalize)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        fake, real = self.features(sr, hr)
        total = sr.new_zeros(())
        for layer, weight in self.layer_weights.items():
            if self.normalize:
                diff = unit_features(fake[layer].float()) - unit_features(real[layer].float())
                per_position = diff.abs() if self.criterion == "l1" else diff.pow(2)
                value = per_position.sum(1).mean()
            else:
                diff = fake[layer] - real[layer]
                value = diff.abs().mean() if self.criterion == "l1" else diff.pow(2).mean()
            total = total + weight * value
        return total


class LPIPSLoss(nn.Module):
    """LPIPS as a loss (Zhang et al. 2018; used so by CodeFormer, Zhou et al. 2022): the batch
    mean of the learned-weight distance between the output and the target, on the offline
    ST-LPIPS trunk and linear weights of ``variant`` (``vgg``, the default, or ``alex``).

    It is :class:`PerceptualLoss` with ``normalize: true`` plus LPIPS's per-channel weights.
    A model trained on one variant's distance is best judged by the other as well, since that
    one variant's score is then partly the training objective.
    """

    def __init__(self, variant: Literal["vgg", "alex"] = "vgg") -> None:
        super().__init__()
        from srkit.metrics.perceptual import stlpips_lpips  # the metric's own definition

        self.variant = variant
        self.lpips = stlpips_lpips(variant)
        self.lpips.requires_grad_(False).eval()

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        layers = self.lpips.layers
        fake = self.lpips.net(sr, layers)
        with torch.no_grad():
            real = self.lpips.net(hr, layers)
        fake = {k: v.float() for k, v in fake.items()}
        real = {k: v.float() for k, v in real.items()}
        return self.lpips.from_features(fake, real).mean()


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C, C)``: ``F F^T / (C H W)`` (Gatys et al.; Johnson et al.)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class StyleLoss(_FeatureLoss):
    """Gram-matrix (style / texture) loss (Gatys et al. 2016; EnhanceNet's texture loss, Sajjadi
    et al. 2017): ``sum_l w_l * mean((G_l(sr) - G_l(hr))^2)`` (``criterion: l1`` for the mean
    absolute difference)."""

    def __init__(
        self,
        network: str | FeatureNet = DEFAULT_NETWORK,
        layers: Mapping[str, float] | list[str] | str = ("relu1_2", "relu2_2", "relu3_3"),
        criterion: Literal["l1", "l2"] = "l2",
    ) -> None:
        super().__init__(network, list(layers) if isinstance(layers, tuple) else layers)
        if criterion not in ("l1", "l2"):
            raise ValueError(f"criterion must be l1 or l2, got {criterion!r}")
        self.criterion = criterion

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        fake, real = self.features(sr, hr)
        total = sr.new_zeros(())
        for layer, weight in self.layer_weights.items():
            diff = gram_matrix(fake[layer].float()) - gram_matrix(real[layer].float())
            value = diff.abs().mean() if self.criterion == "l1" else diff.pow(2).mean()
            total = total + weight * value
        return total


def contextual_similarity(
    x: torch.Tensor, y: torch.Tensor, *, bandwidth: float = 0.5, eps: float = 1e-5
) -> torch.Tensor:
    """Contextual similarity CX(x, y) of feature maps ``(N, C, H, W)`` -> ``(N,)`` in (0, 1].

    Mechrez, Talmi & Zelnik-Manor, "The Contextual Loss for Image Transformation with Non-Aligned
    Data", ECCV 2018: both sets are centred on the mean feature of ``y`` (the target), ``d_ij``
    is the cosine distance between generated feature ``i`` and target feature ``j``,
    ``d~_ij = d_ij / (min_k d_ik + eps)``, ``w_ij = exp((1 - d~_ij) / h)``, ``CX_ij = w_ij /
    sum_k w_ik``, and ``CX = mean_j max_i CX_ij``. Identical sets give 1.
    """
    if x.shape[:2] != y.shape[:2]:
        raise ValueError(f"contextual similarity of {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.float(), y.float()
    mean = y.mean(dim=(0, 2, 3), keepdim=True)
    xc = nn.functional.normalize((x - mean).flatten(2), dim=1)  # (N, C, Px)
    yc = nn.functional.normalize((y - mean).flatten(2), dim=1)  # (N, C, Py)
    distance = (1.0 - xc.transpose(1, 2) @ yc).clamp(min=0)  # (N, Px, Py): i generated, j target
    relative = distance / (distance.min(dim=2, keepdim=True).values + eps)
    # softmax over j of (1 - d~) / h is exp((1 - d~) / h) normalised per row, without overflow
    cx = torch.softmax((1.0 - relative) / bandwidth, dim=2)
    return cx.max(dim=1).values.mean(dim=1)


class ContextualLoss(_FeatureLoss):
    """``sum_l w_l * mean_n(-log CX(phi_l(sr), phi_l(hr)))`` (see :func:`contextual_similarity`).

    It compares feature distributions, not aligned positions, so it tolerates misalignment
    (faces, unpaired data). Its memory grows with the square of a layer's positions: use deep
    layers (``relu3_3``, ``relu4_3``) or small patches.
    """

    def __init__(
        self,
        network: str | FeatureNet = DEFAULT_NETWORK,
        layers: Mapping[str, float] | list[str] | str = "relu4_3",
        bandwidth: float = 0.5,
        max_positions: int = 4096,
    ) -> None:
        super().__init__(network, layers)
        if bandwidth <= 0:
            raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
        self.bandwidth = bandwidth
        self.max_positions = max_positions

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        fake, real = self.features(sr, hr)
        total = sr.new_zeros(())
        for layer, weight in self.layer_weights.items():
            positions = fake[layer].shape[-2] * fake[layer].shape[-1]
            if positions > self.max_positions:
                raise ValueError(
                    f"contextual loss: layer {layer} has {positions} positions (more than "
                    f"max_positions = {self.max_positions}); use a deeper layer or smaller patches"
                )
            cx = contextual_similarity(fake[layer], real[layer], bandwidth=self.bandwidth)
            total = total + weight * (-torch.log(cx.clamp(min=1e-12))).mean()
        return total


class TotalVariationLoss(nn.Module):
    """Anisotropic total variation ``mean|x[i+1, j] - x[i, j]| + mean|x[i, j+1] - x[i, j]|``
    (``criterion: l2`` squares the differences): a smoothness prior on the output alone, so its
    term names no target."""

    def __init__(self, criterion: Literal["l1", "l2"] = "l1") -> None:
        super().__init__()
        if criterion not in ("l1", "l2"):
            raise ValueError(f"criterion must be l1 or l2, got {criterion!r}")
        self.criterion = criterion

    def forward(self, sr: torch.Tensor) -> torch.Tensor:
        dy = sr[..., 1:, :] - sr[..., :-1, :]
        dx = sr[..., :, 1:] - sr[..., :, :-1]
        if self.criterion == "l1":
            return dy.abs().mean() + dx.abs().mean()
        return dy.pow(2).mean() + dx.pow(2).mean()
