"""The ``realesrgan`` preset (Real-ESRGAN's second-order degradation): kernels, the published
parameter ranges, determinism, sizes and levels, YAML, and the training patch path."""

from __future__ import annotations

import math
import re
import textwrap

import numpy as np
import pytest
import torch
import yaml

from srkit.config import ConfigError, from_dict
from srkit.data import second_order
from srkit.data.degrade import (
    Degradation,
    DegradationConfig,
    SecondOrderDegradation,
    _gaussian_kernel,
    bench_degradation,
)
from srkit.data.second_order import (
    KERNELS,
    RESIZE_MODES,
    SecondOrderConfig,
    StageConfig,
    draw_kernel,
    draw_plan,
    gaussian_kernel,
    generalized_gaussian_kernel,
    plateau_kernel,
    sample_generators,
    sinc_kernel,
)
from srkit.image.resize import imresize
from srkit.train.data import ImageCache, PatchDataset
from srkit.train.tasks.supervised import make_degradation

PI = math.pi


@pytest.fixture(autouse=True)
def _one_thread():
    """Small images: threads only add scheduling (the loader workers run one thread too)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _image(seed: int = 0, size: tuple[int, int] = (32, 32), count: int = 2) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((count, 3, 6, 6)))
    return imresize(coarse, size=size).clamp(0, 1).float()


def _load(raw: dict) -> Degradation:
    return Degradation.from_config(from_dict(DegradationConfig, raw, where="degradation"))


# ------------------------------------------------------------------------------------------------
# determinism, sizes, levels


def test_same_generator_same_lr_other_seed_other_lr():
    pipeline = SecondOrderDegradation()
    hr = _image(0, (48, 48))
    first = pipeline(hr, 4, np.random.default_rng(7))
    again = pipeline(hr, 4, np.random.default_rng(7))
    assert torch.equal(first, again)
    assert torch.equal(first, pipeline(hr, 4, 7))  # an int seed is default_rng(seed)
    assert not torch.equal(first, pipeline(hr, 4, 8))
    assert not torch.equal(first[0], first[1])  # the two samples draw different parameters


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_sample_does_not_depend_on_its_batch(dtype):
    pipeline = SecondOrderDegradation()
    hr = _image(1, (32, 32), count=4).to(dtype)

    def drawn():
        generators = sample_generators(np.random.default_rng(11), 4)
        return [draw_plan(g, pipeline.config) for g in generators], generators

    plans, generators = drawn()
    batch = pipeline.apply_plans(hr, 4, plans, generators)
    plans, generators = drawn()
    alone = [pipeline.apply_plans(hr[i : i + 1], 4, [plans[i]], [generators[i]]) for i in range(4)]
    torch.testing.assert_close(batch, torch.cat(alone), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("scale", "size"), [(2, (30, 26)), (2, (18, 18)), (4, (36, 44)), (4, (20, 28))]
)
def test_exact_lr_size_values_in_0_1_on_8_bit_levels(scale, size):
    hr = _image(2, size)
    for seed in range(3):
        lr = SecondOrderDegradation()(hr, scale, seed)
        assert lr.shape == (2, 3, size[0] // scale, size[1] // scale)  # odd LR sides included
        assert lr.dtype == hr.dtype
        assert lr.min() >= 0 and lr.max() <= 1
        levels = lr.double() * 255
        assert (levels - levels.round()).abs().max() < 1e-4


def test_hr_sizes_that_are_not_a_multiple_of_the_scale_are_refused():
    with pytest.raises(ValueError, match="multiple"):
        SecondOrderDegradation()(_image(size=(30, 30)), 4, 0)


def test_skipping_the_second_round_still_gives_the_lr_size():
    pipeline = _load({"preset": "realesrgan", "options": {"second": {"prob": 0.0}}})
    plans = [draw_plan(np.random.default_rng(k), pipeline.config) for k in range(50)]
    assert all(p.second is None for p in plans)
    assert pipeline(_image(3, (24, 24)), 4, 0).shape == (2, 3, 6, 6)


def test_uint8_and_bench_adapters():
    hr = (_image(4, (32, 32)) * 255).round().to(torch.uint8)
    pipeline = SecondOrderDegradation()
    lr = pipeline.apply_uint8(hr, 2, np.random.default_rng(5))
    assert lr.dtype == torch.uint8 and lr.shape == (2, 3, 16, 16)
    bench = bench_degradation(pipeline, seed=1)
    assert torch.equal(bench(hr[:1], 4), bench(hr[:1], 4))
    assert bench(hr[:1], 4).shape == (1, 3, 8, 8)


# ------------------------------------------------------------------------------------------------
# kernels


def test_drawn_kernels_sum_to_1_with_odd_sizes_7_to_21():
    rng = np.random.default_rng(0)
    sizes, kinds = set(), set()
    for _ in range(300):
        draw = draw_kernel(rng, StageConfig())
        kernel = draw.kernel()
        assert kernel.shape == (draw.size, draw.size)
        assert kernel.sum().item() == pytest.approx(1.0, abs=1e-12)
        sizes.add(draw.size)
        kinds.add(draw.kind)
    assert sizes == set(range(7, 22, 2))
    assert kinds == {*KERNELS, "sinc"}


def test_isotropic_kernels_are_symmetric_and_peak_at_the_centre():
    kernels = [
        gaussian_kernel(15, 2.0),
        generalized_gaussian_kernel(15, 2.0, 2.0, 0.0, 0.7),
        plateau_kernel(15, 2.0, 2.0, 0.0, 1.5),
        sinc_kernel(15, PI / 2),
    ]
    for kernel in kernels:
        torch.testing.assert_close(kernel, kernel.T, rtol=0, atol=1e-15)
        torch.testing.assert_close(kernel, kernel.flip(0), rtol=0, atol=1e-15)
        torch.testing.assert_close(kernel, kernel.flip(1), rtol=0, atol=1e-15)
        assert int(kernel.argmax()) == 7 * 15 + 7


def test_anisotropic_gaussian_is_elongated_along_its_angle():
    wide = gaussian_kernel(21, 3.0, 1.0, 0.0)
    coords = torch.arange(21, dtype=torch.float64) - 10
    var_x = (wide.sum(dim=0) * coords**2).sum()
    var_y = (wide.sum(dim=1) * coords**2).sum()
    assert var_x > 4 * var_y
    torch.testing.assert_close(gaussian_kernel(21, 3.0, 1.0, PI / 2), wide.T)
    torch.testing.assert_close(  # the same definition as the pipeline's gaussian_blur step
        gaussian_kernel(21, 2.5, 0.8, 0.6), _gaussian_kernel(2.5, 0.8, 0.6, 21)
    )


def test_generalized_gaussian_with_beta_1_is_the_gaussian():
    # exp(-q^beta / 2) with q the squared distance: beta = 1 is exp(-r^2 / 2), the shape-2
    # Gaussian (the paper's convention, the one its betag range [0.5, 4] is in)
    torch.testing.assert_close(
        generalized_gaussian_kernel(21, 2.0, 0.7, 0.3, 1.0), gaussian_kernel(21, 2.0, 0.7, 0.3)
    )
    coords = torch.arange(13, dtype=torch.float64) - 6
    line = torch.exp(-(coords**2) / (2 * 1.5**2))
    separable = torch.outer(line, line) / torch.outer(line, line).sum()
    torch.testing.assert_close(generalized_gaussian_kernel(13, 1.5, 1.5, 0.0, 1.0), separable)
    gauss = gaussian_kernel(21, 2.0)
    heavy = generalized_gaussian_kernel(21, 2.0, 2.0, 0.0, 0.5)
    flat = generalized_gaussian_kernel(21, 2.0, 2.0, 0.0, 4.0)
    assert heavy[0, 10] / heavy[10, 10] > gauss[0, 10] / gauss[10, 10]  # heavier tails
    assert flat[10, 11] / flat[10, 10] > gauss[10, 11] / gauss[10, 10]  # a flatter top


def test_plateau_kernel_has_a_flat_top_and_heavy_tails():
    gauss = gaussian_kernel(21, 2.0)
    plateau = plateau_kernel(21, 2.0, 2.0, 0.0, 2.0)
    assert plateau[10, 11] / plateau[10, 10] > gauss[10, 11] / gauss[10, 10]
    assert plateau[0, 10] / plateau[10, 10] > 100 * gauss[0, 10] / gauss[10, 10]
    assert (plateau > 0).all()


@pytest.mark.parametrize(
    ("size", "cutoff"), [(21, PI / 2), (21, PI / 3), (13, PI / 5), (7, PI / 2)]
)
def test_sinc_kernel_is_a_circular_low_pass(size, cutoff):
    kernel = sinc_kernel(size, cutoff)
    assert kernel.sum().item() == pytest.approx(1.0)
    assert kernel.min() < 0  # the ripples behind ringing and overshoot
    response = torch.fft.fft2(kernel, s=(128, 128)).abs()
    freq = torch.fft.fftfreq(128, dtype=torch.float64) * 2 * PI  # radians per pixel
    radius = torch.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2)
    assert response[0, 0].item() == pytest.approx(1.0)
    assert response[radius < 0.5 * cutoff].min() > 0.8  # the pass band
    assert response[(radius > 1.5 * cutoff) & (radius <= PI)].mean() < 0.06  # the stop band


# ------------------------------------------------------------------------------------------------
# the published parameters


def _share(values, predicate) -> float:
    values = list(values)
    return sum(1 for v in values if predicate(v)) / len(values)


def test_drawn_parameters_follow_the_published_settings():
    rng = np.random.default_rng(0)
    plans = [draw_plan(rng, SecondOrderConfig()) for _ in range(3000)]
    near = lambda value, expected: abs(value - expected) < 0.04  # noqa: E731
    firsts = [p.first for p in plans]
    seconds = [p.second for p in plans]
    assert all(s is not None for s in seconds)  # Real-ESRGAN always runs the second round
    assert all(s.kernel is not None for s in firsts)
    assert near(_share(seconds, lambda s: s.kernel is not None), 0.8)
    for stage, sigma in ((firsts, 3.0), ([s for s in seconds if s.kernel], 1.5)):
        kernels = [s.kernel for s in stage]
        assert near(_share(kernels, lambda k: k.kind == "sinc"), 0.1)
        others = [k for k in kernels if k.kind != "sinc"]
        for kind, prob in zip(KERNELS, (0.45, 0.25, 0.12, 0.03, 0.12, 0.03), strict=True):
            assert near(_share(others, lambda k, kind=kind: k.kind == kind), prob)
        for k in kernels:
            assert k.size % 2 == 1 and 7 <= k.size <= 21
            if k.kind == "sinc":
                low = PI / 3 if k.size < 13 else PI / 5
                assert low <= k.cutoff <= PI
                continue
            assert 0.2 <= k.sigma_x <= sigma and 0.2 <= k.sigma_y <= sigma
            assert -PI <= k.theta <= PI
            if k.kind.endswith("_iso") or k.kind == "iso":
                assert k.sigma_x == k.sigma_y and k.theta == 0
            if k.kind.startswith("generalized"):
                assert 0.5 <= k.beta <= 4
            if k.kind.startswith("plateau"):
                assert 1 <= k.beta <= 2
    published = (
        (firsts, (0.2, 0.7, 0.1), (0.15, 1.5), 30.0, 3.0),
        (seconds, (0.3, 0.4, 0.3), (0.3, 1.2), 25.0, 2.5),
    )
    for stage, resize_prob, (low, high), sigma, poisson in published:
        for direction, prob in zip(("up", "down", "keep"), resize_prob, strict=True):
            assert near(_share(stage, lambda s, d=direction: s.resize == d), prob)
        assert all(1 <= s.factor <= high for s in stage if s.resize == "up")
        assert all(low <= s.factor <= 1 for s in stage if s.resize == "down")
        assert all(s.factor == 1 for s in stage if s.resize == "keep")
        for mode in RESIZE_MODES:
            assert near(_share(stage, lambda s, m=mode: s.mode == m), 1 / 3)
        assert near(_share(stage, lambda s: s.noise == "gaussian"), 0.5)
        assert near(_share(stage, lambda s: s.gray_noise), 0.4)
        assert all(1 <= s.noise_level <= sigma for s in stage if s.noise == "gaussian")
        assert all(0.05 <= s.noise_level <= poisson for s in stage if s.noise == "poisson")
    qualities = [p.first_quality for p in plans] + [p.final_quality for p in plans]
    assert all(isinstance(q, int) and 30 <= q <= 95 for q in qualities)
    assert near(_share(plans, lambda p: p.jpeg_first), 0.5)
    assert near(_share(plans, lambda p: p.final_sinc is not None), 0.8)
    for sinc in (p.final_sinc for p in plans if p.final_sinc is not None):
        assert sinc.kind == "sinc" and PI / 3 <= sinc.cutoff <= PI
        assert sinc.size % 2 == 1 and 7 <= sinc.size <= 21
    assert {p.final_mode for p in plans} == set(RESIZE_MODES)


# ------------------------------------------------------------------------------------------------
# configuration


def test_preset_loads_from_yaml_with_overrides(tmp_path):
    path = tmp_path / "realesrgan.yaml"
    path.write_text(
        "preset: realesrgan\n"
        "options:\n"
        "  first: {noise_sigma: [1, 10], jpeg_quality: 90}\n"
        "  second: {prob: 0.5}\n"
        "  final: {sinc_prob: 0.0}\n"
    )
    pipeline = Degradation.from_yaml(path)
    assert isinstance(pipeline, SecondOrderDegradation) and not pipeline.is_default
    config = pipeline.config
    assert config.first.noise_sigma == [1.0, 10.0] and config.first.jpeg_quality == 90.0
    assert config.first.blur_sigma == [0.2, 3.0]  # the rest stays published
    assert config.second.prob == 0.5 and config.second.blur_sigma == [0.2, 1.5]
    assert config.final.sinc_prob == 0.0
    assert pipeline(_image(5, (16, 16)), 4, 0).shape == (2, 3, 4, 4)
    assert isinstance(make_degradation(str(path)), SecondOrderDegradation)


def test_the_docstring_example_is_valid_and_lists_the_defaults():
    doc = second_order.__doc__
    block = doc[doc.index("    preset: realesrgan") :]
    pipeline = _load(yaml.safe_load(textwrap.dedent(block)))
    assert pipeline.config == SecondOrderConfig()
    assert pipeline.quantize


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"preset": "realesrgan", "options": {"first": {"noise_sgma": [1, 2]}}},
            "unknown key 'degradation.options.first.noise_sgma' (did you mean 'noise_sigma'?)",
        ),
        ({"preset": "realesrgan", "options": {"thrid": {}}}, "unknown key 'degradation.options."),
        ({"preset": "realesrgan", "stages": []}, "unknown key 'degradation.stages'"),
        ({"preset": "bsrgan"}, "degradation.preset: expected"),
        ({"preset": "realesrgan", "steps": [{"type": "jpeg"}]}, "preset or steps"),
        ({"preset": "realesrgan", "order": "random"}, "degradation.order"),
        ({"options": {"first": {}}}, "only with a preset"),
    ],
)
def test_bad_keys_are_one_line_config_errors(raw, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        _load(raw)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("section", "setting", "message"),
    [
        ("first", {"kernel_prob": [1.0]}, "degradation.options.first: kernel_prob"),
        ("first", {"kernel_list": ["box"]}, "kernel_list"),
        ("second", {"resize_range": [0.5, 0.9]}, "degradation.options.second: resize_range"),
        ("final", {"kernel_size": [8, 21]}, "kernel_size"),
        ("first", {"jpeg_quality": [30, 120]}, "jpeg_quality"),
        ("second", {"prob": 1.5}, "prob"),
        ("final", {"resize_modes": ["lanczos"]}, "resize_modes"),
        ("first", {"blur_sigma": "wide"}, "degradation.options.first.blur_sigma"),
    ],
)
def test_bad_values_are_one_line_config_errors(section, setting, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        _load({"preset": "realesrgan", "options": {section: setting}})
    assert "\n" not in str(error.value)


# ------------------------------------------------------------------------------------------------
# training


def test_training_patches_through_the_patch_dataset():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 44, 3), dtype=np.uint8) for _ in range(2)]
    cache = ImageCache(names=["a", "b"], images=images)
    degradation = make_degradation({"preset": "realesrgan", "options": {"second": {"prob": 0.8}}})
    assert isinstance(degradation, SecondOrderDegradation)
    dataset = PatchDataset(cache, scale=4, lr_patch=8, degradation=degradation, seed=3)
    sample = dataset[(0, 0)]
    assert sample["lr"].shape == (3, 8, 8) and sample["hr"].shape == (3, 32, 32)
    assert sample["lr"].dtype == torch.float32 == sample["hr"].dtype
    assert sample["lr"].min() >= 0 and sample["lr"].max() <= 1
    assert torch.equal(dataset[(0, 0)]["lr"], sample["lr"])  # a key always gives the same LR
    assert not torch.equal(dataset[(0, 1)]["lr"], sample["lr"])
    x2 = PatchDataset(cache, scale=2, lr_patch=9, degradation=degradation, seed=3)[(1, 0)]
    assert x2["lr"].shape == (3, 9, 9) and x2["hr"].shape == (3, 18, 18)
