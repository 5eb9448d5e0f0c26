"""Degradation pipelines: every kind, shapes, determinism, YAML, the bench adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srkit.config import ConfigError
from srkit.data.degrade import (
    STEP_TYPES,
    Degradation,
    DegradationConfig,
    GaussianBlurStep,
    GaussianNoiseStep,
    JpegStep,
    MotionBlurStep,
    PoissonNoiseStep,
    ResizeStep,
    bench_degradation,
)
from srkit.image.resize import imresize


def _image(seed: int = 0, size: int = 48) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((2, 3, size // 8, size // 8)))
    return imresize(coarse, size=(size, size)).clamp(0, 1)


def test_default_is_matlab_bicubic_rounded_to_8_bit():
    hr = _image()
    lr = Degradation()(hr, 4, rng=0)
    expected = torch.floor(imresize(hr, scale=0.25).clamp(0, 1) * 255 + 0.5) / 255
    torch.testing.assert_close(lr, expected)
    assert Degradation().is_default


@pytest.mark.parametrize("kind", sorted(STEP_TYPES))
def test_each_kind_gives_lr_shape_and_is_deterministic(kind):
    step = STEP_TYPES[kind]()
    pipeline = Degradation([step])
    hr = _image(1)
    first = pipeline(hr, 2, rng=123)
    again = pipeline(hr, 2, rng=123)
    assert first.shape == (2, 3, 24, 24)
    assert first.min() >= 0 and first.max() <= 1
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    if kind != "resize":  # the kind really changes the image
        assert (first - Degradation()(hr, 2, rng=123)).abs().max() > 1 / 255


def test_random_parameters_differ_between_seeds():
    pipeline = Degradation([GaussianNoiseStep(sigma=[5.0, 20.0])])
    hr = _image(2)
    assert not torch.equal(pipeline(hr, 2, rng=1), pipeline(hr, 2, rng=2))


def test_blur_sigma_orders_the_loss_of_detail():
    hr = _image(3)
    sharp = Degradation([GaussianBlurStep(sigma=0.3)], quantize=False)(hr, 2, rng=0)
    blurry = Degradation([GaussianBlurStep(sigma=3.0)], quantize=False)(hr, 2, rng=0)
    detail = lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean()  # noqa: E731
    assert detail(blurry) < detail(sharp)
    aniso = Degradation([GaussianBlurStep(sigma=[0.5, 3.0], anisotropic=True)])
    assert aniso(hr, 2, rng=0).shape == (2, 3, 24, 24)


def test_jpeg_q10_is_lossy_and_q100_nearly_not():
    hr = _image(4, size=64)
    plain = Degradation([ResizeStep()])(hr, 2, rng=0)
    low = Degradation([ResizeStep(), JpegStep(quality=10)])(hr, 2, rng=0)
    high = Degradation([ResizeStep(), JpegStep(quality=100)])(hr, 2, rng=0)
    low_err = (low - plain).abs().mean()
    high_err = (high - plain).abs().mean()
    assert low_err > 0.01
    assert high_err < low_err / 2  # q100 keeps 4:2:0 chroma subsampling, so not lossless


def test_noise_kinds_have_the_requested_strength():
    flat = torch.full((1, 3, 64, 64), 0.5, dtype=torch.float64)
    noisy = Degradation([ResizeStep(), GaussianNoiseStep(sigma=10.0)], quantize=False)(
        flat, 2, rng=0
    )
    assert (noisy - 0.5).std().item() == pytest.approx(10 / 255, rel=0.1)
    shot = Degradation([ResizeStep(), PoissonNoiseStep(peak=100.0)], quantize=False)(flat, 2, rng=0)
    # Poisson: variance = mean / peak
    assert shot.var().item() == pytest.approx(0.5 / 100, rel=0.15)


def test_motion_blur_kernel_smears_along_its_angle():
    dot = torch.zeros(1, 1, 33, 33, dtype=torch.float64)
    dot[..., 16, 16] = 1.0
    horizontal = MotionBlurStep(length=9.0, angle=0.0).apply(dot, np.random.default_rng(0), 1)
    spread_x = (horizontal[0, 0].sum(dim=0) > 1e-6).sum()
    spread_y = (horizontal[0, 0].sum(dim=1) > 1e-6).sum()
    assert spread_x >= 8 and spread_y <= 2
    assert horizontal.sum().item() == pytest.approx(1.0)


def test_random_order_keeps_resize_in_place_and_is_seeded():
    steps = [GaussianBlurStep(sigma=1.0), ResizeStep(), GaussianNoiseStep(), JpegStep()]
    pipeline = Degradation(steps, order="random")
    orders = {tuple(type(s).__name__ for s in pipeline._ordered(np.random.default_rng(k)))
              for k in range(20)}  # fmt: skip
    assert len(orders) > 1
    assert all(order[1] == "ResizeStep" for order in orders)


def test_yaml_round_trip_and_errors(tmp_path):
    path = tmp_path / "real.yaml"
    path.write_text(
        "order: random\n"
        "steps:\n"
        "  - {type: gaussian_blur, sigma: [0.2, 2.0], anisotropic: true}\n"
        "  - {type: resize, method: opencv_bicubic}\n"
        "  - {type: jpeg, quality: [30, 90]}\n"
    )
    pipeline = Degradation.from_yaml(path)
    assert [type(s) for s in pipeline.steps] == [GaussianBlurStep, ResizeStep, JpegStep]
    assert pipeline.steps[1].method == "opencv_bicubic"
    with pytest.raises(ConfigError, match="type"):
        Degradation.from_config(DegradationConfig(steps=[{"type": "sharpen"}]))
    with pytest.raises(ConfigError, match="unknown key"):
        Degradation.from_config(DegradationConfig(steps=[{"type": "jpeg", "qualty": 5}]))
    with pytest.raises(ConfigError, match="at most one resize"):
        Degradation([ResizeStep(), ResizeStep()])


def test_bench_adapter_is_repeatable():
    hr = (torch.rand(1, 3, 32, 32) * 255).round().to(torch.uint8)
    pipeline = Degradation([GaussianNoiseStep(sigma=[1.0, 10.0])])
    first = bench_degradation(pipeline, seed=7)(hr, 2)
    second = bench_degradation(pipeline, seed=7)(hr, 2)
    assert first.dtype == torch.uint8 and first.shape == (1, 3, 16, 16)
    assert torch.equal(first, second)


def test_uint8_adapter_runs_the_pipeline_on_hr_over_255_and_rounds():
    hr = (torch.rand(2, 3, 32, 32) * 255).round().to(torch.uint8)
    pipeline = Degradation([GaussianNoiseStep(sigma=[1.0, 10.0])])
    lr = pipeline.apply_uint8(hr, 2, np.random.default_rng(3))
    expected = pipeline(hr.double() / 255, 2, np.random.default_rng(3))
    assert lr.dtype == torch.uint8 and lr.shape == (2, 3, 16, 16)
    assert torch.equal(lr, torch.floor(expected * 255 + 0.5).to(torch.uint8))
