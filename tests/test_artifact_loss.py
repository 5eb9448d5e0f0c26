"""LDL's artifact map and loss: the local variance against a direct computation, the map's zeros
(where the EMA is worse, and for a perfect output), its scale, and the gradient of the loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srkit.losses.artifacts import artifact_loss, artifact_map, local_variance


def reference_variance(x: torch.Tensor, ksize: int) -> torch.Tensor:
    pad = ksize // 2
    windows = F.pad(x, (pad,) * 4, mode="reflect").unfold(2, ksize, 1).unfold(3, ksize, 1)
    return windows.var(dim=(-1, -2), unbiased=True)


def test_local_variance_is_the_windows_unbiased_variance():
    x = torch.rand(2, 1, 12, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for ksize in (3, 7):
        expected = reference_variance(x.float(), ksize)
        assert torch.allclose(local_variance(x, ksize), expected, atol=1e-6)
    assert local_variance(torch.full((1, 1, 8, 8), 0.3), 3).abs().max() < 1e-6
    with pytest.raises(ValueError, match="odd"):
        local_variance(x, 4)


def test_artifact_map_values_and_zeros():
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 3, 16, 16, generator=g)
    sr = (hr + 0.1 * torch.randn(2, 3, 16, 16, generator=g)).clamp(0, 1)
    residual = (hr - sr).abs().sum(1, keepdim=True)
    expected = residual.flatten(1).var(1).view(-1, 1, 1, 1) ** 0.2 * reference_variance(residual, 7)
    # an EMA that is exact everywhere never masks: the map is the weight itself
    assert torch.allclose(artifact_map(hr, sr, hr), expected, atol=1e-6)
    assert artifact_map(hr, sr, hr).gt(0).float().mean() > 0.9
    # an EMA that is further from the HR than the generator at every pixel masks everything
    worse = hr + 2 * (sr - hr) + 0.01 * (sr >= hr).float() - 0.01 * (sr < hr).float()
    assert artifact_map(hr, sr, worse).abs().max() == 0
    # a perfect output has no artifacts
    assert artifact_map(hr, hr, sr).abs().max() == 0


def test_artifact_loss_pulls_the_output_to_the_hr_where_the_map_says():
    g = torch.Generator().manual_seed(2)
    hr = torch.rand(1, 3, 16, 16, generator=g)
    sr = (hr + 0.2 * torch.randn(1, 3, 16, 16, generator=g)).requires_grad_(True)
    loss = artifact_loss(hr, sr, hr.clone())
    weight = artifact_map(hr, sr.detach(), hr)
    assert loss.item() == pytest.approx((weight * (sr.detach() - hr)).abs().mean().item())
    loss.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    # masked pixels get no gradient
    masked = artifact_map(hr, sr.detach(), hr + 10.0) == 0
    sr.grad = None
    artifact_loss(hr, sr, hr + 10.0).backward()
    assert masked.all() and sr.grad.abs().max() == 0
