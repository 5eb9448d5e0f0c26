"""Architectures: parameter counts against the papers, output shapes, registry, adapter, catalog."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srkit.archs import ARCHS, InputConvention, build, count_params, get_spec
from srkit.archs.adapter import NetworkModel
from srkit.archs.catalog import catalog_rows, count_macs

# Published parameter counts at each paper's own setting, with where they come from. "weights"
# means the paper counts convolution weights only (no biases / PReLU slopes), as SRCNN and FSRCNN
# do; everything else is sum(p.numel()).
PUBLISHED = {
    # Dong et al., TPAMI 2016, filter-size study: 9-5-5 (n1=64, n2=32) = 57,184.
    ("srcnn", 3): (57_184, "weights"),
    # Dong et al., ECCV 2016, complexity analysis: FSRCNN(56, 12, 4) = 12,464.
    ("fsrcnn", 3): (12_464, "weights"),
    # Shi et al., CVPR 2016, layer configuration (5x5x64, 3x3x32, 3x3x9) at x3; the
    # paper prints no total, this is that configuration's weight count.
    ("espcn", 3): (22_624, "weights"),
    # VDSR 665K and DRCN 1,775K: the DRRN (Tai et al., CVPR 2017) and MS-LapSRN (Lai et al.,
    # TPAMI 2018) parameter comparisons.
    ("vdsr", 2): (665_000, "all"),
    ("drcn", 2): (1_775_000, "all"),
    # LapSRN x4 (depth 10): 812K, MS-LapSRN (Lai et al., TPAMI 2018) parameter comparison.
    ("lapsrn", 4): (812_000, "all"),
    # SRDenseNet x4: ~2.0M as cited for it in later comparisons (the ICCV 2017 paper gives the
    # configuration only).
    ("srdensenet", 4): (2_000_000, "all"),
    # SRResNet (SRGAN generator, 16 blocks with BN) x4: commonly cited as 1.5M (the paper
    # prints no count); 1.55M to three figures.
    ("srresnet", 4): (1_550_000, "all"),
    # leftthomas/SRGAN's generator (5 blocks): the tensors of its released netG_epoch_4_100.pth.
    ("srgan_leftthomas", 4): (734_092, "all"),
    # EDSR-PyTorch README (sanghyun-son/EDSR-PyTorch) model table.
    ("edsr_baseline", 2): (1_370_000, "all"),
    ("edsr_baseline", 3): (1_550_000, "all"),
    ("edsr_baseline", 4): (1_520_000, "all"),
    ("edsr", 2): (40_700_000, "all"),
    ("edsr", 3): (43_700_000, "all"),
    ("edsr", 4): (43_100_000, "all"),
    # D-DBPN x4 (T = 7): ~10.4M, the size commonly cited for it (Haris et al. CVPR 2018).
    ("dbpn", 4): (10_400_000, "all"),
    # RRDBNet (ESRGAN generator, 23 RRDBs) x4: 16,697,987 (16.7M).
    ("rrdb", 4): (16_697_987, "all"),
    # A2N (Chen et al. 2021): 1.04M.
    ("a2n", 2): (1_036_000, "all"),
    ("a2n", 3): (1_036_000, "all"),
    # IMDN (Hui et al., ACM MM 2019), comparison with lightweight models: 694K / 703K / 715K.
    ("imdn", 2): (694_000, "all"),
    ("imdn", 3): (703_000, "all"),
    ("imdn", 4): (715_000, "all"),
    # RLFN (Kong et al., CVPRW 2022): 527K (x2) / 543K (x4).
    ("rlfn", 2): (527_000, "all"),
    ("rlfn", 4): (543_000, "all"),
    # RLFN-S: tensor count of the authors' released rlfn_s_x2.pth / rlfn_s_x4.pth.
    ("rlfn_s", 2): (454_620, "all"),
    ("rlfn_s", 4): (470_208, "all"),
    # CARN-M (Ahn et al., ECCV 2018), one multi-scale model: 412K.
    ("carn_m", 2): (412_000, "all"),
    # RepAN, srkit's flagship (src/srkit/archs/repan.py), fused inference form; the issue's
    # budget is <= 0.4M at every scale.
    ("repan", 2): (281_388, "all"),
    ("repan", 3): (287_883, "all"),
    ("repan", 4): (296_976, "all"),
    # RepAN pair (image-space blend of two RepANs): twice RepAN's count.
    ("repan_pair", 2): (562_776, "all"),
    ("repan_pair", 3): (575_766, "all"),
    ("repan_pair", 4): (593_952, "all"),
    # RepAN-Face, srkit's face network (same module), fused inference form.
    ("repan_face", 2): (288_195, "all"),
    ("repan_face", 4): (326_355, "all"),
    ("repan_face", 8): (386_451, "all"),
    # PFSRNet (Kim et al., BMVC 2019): the authors' model.py Generator counted layer by layer.
    ("pfsrnet", 8): (8_969_097, "all"),
    # Wavelet-SRNet (Huang et al., ICCV 2017): the authors' networks.py NetSR counted.
    ("waveletsrnet", 2): (46_327_372, "all"),
    ("waveletsrnet", 4): (51_353_968, "all"),
    ("waveletsrnet", 8): (74_999_296, "all"),
    # L2H (Bulat et al., ECCV 2018) at the paper's size: srkit's count (the paper prints none).
    ("l2h", 4): (15_976_131, "all"),
}

ALL_SCALES = [(name, s) for name, spec in ARCHS.items() for s in spec.scales]

# Reduced widths/depths so that every arch and scale really runs on the CPU in well under a second.
SMALL = {
    "srcnn": {"n1": 8, "n2": 4},
    "fsrcnn": {"d": 8, "s": 4, "m": 1},
    "espcn": {"n1": 8, "n2": 4},
    "vdsr": {"depth": 4, "features": 8},
    "drcn": {"recursions": 3, "features": 8},
    "lapsrn": {"depth": 2, "features": 8},
    "srdensenet": {"blocks": 2, "layers": 2, "growth": 4, "features": 8, "bottleneck": 8},
    "srresnet": {"blocks": 2, "features": 8},
    "srgan_leftthomas": {"blocks": 2, "features": 8},
    "edsr_baseline": {"blocks": 2, "features": 8},
    "edsr": {"blocks": 2, "features": 8},
    "dbpn": {"stages": 3, "features": 8, "init_features": 16},
    "rrdb": {"blocks": 1, "features": 8, "growth": 4},
    "a2n": {"blocks": 2, "features": 8, "up_features": 8},
    "imdn": {"blocks": 2, "features": 16},
    "rlfn": {"blocks": 2, "features": 8, "esa_channels": 4},
    "rlfn_s": {"blocks": 2, "features": 8, "esa_channels": 4},
    "carn_m": {"features": 8, "groups": 2},
    "repan": {"features": 8, "blocks": 2},
    "repan_pair": {"features": 8, "blocks": 2, "mix": 0.3},
    "repan_face": {"features": 8, "blocks": 2, "up_features": [8, 8, 8]},
    "pfsrnet": {"width": 16},
    "waveletsrnet": {"features": 4, "wavelet_features": 2, "res_blocks": 1},
    "l2h": {"features": 8, "blocks": 1, "up_features": [8, 4], "up_blocks": 1},
}


def test_every_arch_has_a_published_count_and_small_config() -> None:
    assert {name for name, _ in PUBLISHED} == set(ARCHS)
    assert set(SMALL) == set(ARCHS)


@pytest.mark.parametrize(("name", "scale"), sorted(PUBLISHED))
def test_param_count_matches_paper(name: str, scale: int) -> None:
    published, counted = PUBLISHED[(name, scale)]
    spec = get_spec(name)
    assert spec.params_counted == counted
    assert spec.published_params[scale] == published
    with torch.device("meta"):
        net = build(name, scale=scale, **spec.paper_options)
    n = count_params(net, counted)
    assert abs(n - published) / published <= 0.02, f"{name} x{scale}: {n:,} vs {published:,}"


def test_srcnn_param_variants_match_paper() -> None:
    # TPAMI 2016 filter-size study: 9-1-5 -> 8,032, 9-3-5 -> 24,416, 9-5-5 -> 57,184 weights.
    for f2, expected in ((1, 8_032), (3, 24_416), (5, 57_184)):
        assert count_params(build("srcnn", scale=3, f2=f2), "weights") == expected


@pytest.mark.parametrize(("name", "scale"), ALL_SCALES)
def test_forward_shape_paper_config(name: str, scale: int) -> None:
    """Paper configuration at every scale; shapes propagated on the meta device (no compute)."""
    spec = get_spec(name)
    with torch.device("meta"):
        net = build(name, scale=scale)
        out = net(torch.empty(2, spec.convention.in_channels, 16, 20))
    assert tuple(out.shape) == (2, spec.convention.in_channels, 16 * scale, 20 * scale)


@pytest.mark.parametrize(("name", "scale"), ALL_SCALES)
def test_forward_runs_small_variant(name: str, scale: int) -> None:
    spec = get_spec(name)
    torch.manual_seed(0)
    net = build(name, scale=scale, **SMALL[name]).eval()
    x = torch.rand(1, spec.convention.in_channels, 16, 18) * spec.convention.value_range
    with torch.no_grad():
        out = net(x)
    assert out.shape == (1, spec.convention.in_channels, 16 * scale, 18 * scale)
    assert torch.isfinite(out).all()


def test_build_errors_are_clear() -> None:
    with pytest.raises(KeyError, match="unknown architecture 'nope'.*imdn"):
        build("nope")
    with pytest.raises(ValueError, match=r"lapsrn supports scales \(2, 4, 8\), got 3"):
        build("lapsrn", scale=3)
    with pytest.raises(TypeError, match="unknown option.*widht"):
        build("imdn", scale=2, widht=3)


def test_build_accepts_aliases_and_defaults_to_paper_scale() -> None:
    assert build("RLFN-S", scale=4, **SMALL["rlfn_s"]).scale == 4
    with torch.device("meta"):
        assert build("srdensenet").scale == 4
        assert build("fsrcnn").scale == 3


def test_input_convention_validation() -> None:
    with pytest.raises(ValueError, match="value_range"):
        InputConvention("rgb", 2.0)
    with pytest.raises(ValueError, match="mean needs 1"):
        InputConvention("y", 1.0, (0.1, 0.2, 0.3))
    c = InputConvention("rgb", 255.0, (0.4, 0.4, 0.4))
    assert InputConvention.from_dict(c.to_dict()) == c
    assert "input_size" not in c.to_dict()  # written only when set
    face = InputConvention("rgb", 1.0, None, input_size=(128, 96))
    assert face.to_dict()["input_size"] == [128, 96]
    assert InputConvention.from_dict(face.to_dict()) == face
    for bad in ((128,), (0, 128), (128.0, 128)):
        with pytest.raises(ValueError, match="input_size must be"):
            InputConvention("rgb", 1.0, None, input_size=bad)


def test_drcn_recursive_supervision_outputs() -> None:
    net = build("drcn", scale=2, **SMALL["drcn"]).eval()
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        out, preds = net(x, return_all=True)
    assert len(preds) == 3
    expected = sum(w * p for w, p in zip(net.weights, preds, strict=True))
    torch.testing.assert_close(out, expected)


def test_lapsrn_pyramid_levels_and_bilinear_init() -> None:
    net = build("lapsrn", scale=8, **SMALL["lapsrn"]).eval()
    with torch.no_grad():
        for level in net.levels:  # silence the residual branch: pure image pyramid remains
            level.residual.weight.zero_()
            level.residual.bias.zero_()
        out, levels = net(torch.full((1, 1, 6, 6), 0.5), return_all=True)
    assert [t.shape[-1] for t in levels] == [12, 24, 48]
    # bilinear x2 kernels reproduce a constant image away from the zero-padded border
    torch.testing.assert_close(out[..., 8:-8, 8:-8], torch.full_like(out[..., 8:-8, 8:-8], 0.5))


class _Nearest(nn.Module):
    def __init__(self, scale: int, offset: float = 0.0) -> None:
        super().__init__()
        self.scale = scale
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest") + self.offset


def test_adapter_range_and_mean_round_trip() -> None:
    lr = torch.rand(2, 3, 5, 6)
    expected = nn.functional.interpolate(lr, scale_factor=2, mode="nearest")
    conv = InputConvention("rgb", 255.0, (0.4488, 0.4371, 0.4040))
    model = NetworkModel(_Nearest(2), 2, conv, "nearest")
    torch.testing.assert_close(model(lr), expected)
    assert model.name == "nearest" and model.scale == 2

    seen = {}

    class Spy(_Nearest):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen["x"] = x
            return super().forward(x)

    NetworkModel(Spy(2), 2, conv, "spy")(torch.full((1, 3, 2, 2), 0.5))
    torch.testing.assert_close(seen["x"][0, :, 0, 0], torch.tensor([0.0512, 0.0629, 0.0960]) * 255)


def test_adapter_y_only_network() -> None:
    from srkit.image.color import rgb_to_ycbcr
    from srkit.image.resize import imresize

    lr = torch.rand(1, 3, 8, 8) * 0.8 + 0.1

    class BicubicY(nn.Module):
        def forward(self, y: torch.Tensor) -> torch.Tensor:
            assert y.shape[1] == 1
            return imresize(y, scale=3)

    model = NetworkModel(BicubicY(), 3, InputConvention("y", 1.0), "bicubic-y")
    out = model(lr)
    torch.testing.assert_close(out, imresize(lr, scale=3), atol=1e-5, rtol=0)
    # the network really sees MATLAB's Y (16..235 / 255), not RGB
    model2 = NetworkModel(_Nearest(3, offset=0.1), 3, InputConvention("y", 1.0), "y+0.1")
    ycc = rgb_to_ycbcr(model2(lr))
    ref = rgb_to_ycbcr(lr)[:, :1]
    torch.testing.assert_close(ycc[:, :1, ::3, ::3], ref + 0.1, atol=1e-5, rtol=0)


def test_adapter_rejects_non_rgb() -> None:
    model = NetworkModel(_Nearest(2), 2, InputConvention(), "n")
    with pytest.raises(ValueError, match=r"expected \(N, 3, H, W\)"):
        model(torch.rand(1, 1, 4, 4))


def test_count_macs_conv_and_deconv() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ConvTranspose2d(8, 2, 4, 2, 1))
    with torch.device("meta"):
        net = net.to("meta")
    assert count_macs(net, (1, 3, 10, 10)) == 100 * 8 * 3 * 9 + (100 * 8) * 2 * 16


@pytest.mark.parametrize(
    ("name", "scale", "published_gmacs"),
    [
        # Multi-adds for a 1280x720 HR output, as the lightweight-SR papers report them:
        ("imdn", 4, 40.9),  # IMDN paper, x4
        ("carn_m", 4, 32.5),  # CARN paper, CARN-M x4
        ("carn_m", 2, 91.2),  # CARN paper, CARN-M x2
    ],
)
def test_macs_match_published_multi_adds(name: str, scale: int, published_gmacs: float) -> None:
    with torch.device("meta"):
        net = build(name, scale=scale)
    macs = count_macs(net, (1, 3, 720 // scale, 1280 // scale))
    assert abs(macs / 1e9 - published_gmacs) / published_gmacs < 0.02


def test_catalog_rows() -> None:
    rows = catalog_rows(size=64, names=["imdn", "lapsrn"])
    assert [(r.name, r.scale) for r in rows] == [
        ("imdn", 2), ("imdn", 3), ("imdn", 4), ("lapsrn", 2), ("lapsrn", 4), ("lapsrn", 8)
    ]  # fmt: skip
    imdn4 = rows[2]
    assert imdn4.params == 715_176 and imdn4.published_params == 715_000
    assert imdn4.macs > 0 and "Hui" in imdn4.reference
    assert rows[3].macs < rows[4].macs < rows[5].macs


# --------------------------------------------------------------------------- RepAN (flagship)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_repan_fits_the_budget_in_both_forms(scale: int) -> None:
    assert count_params(build("repan", scale=scale)) <= 400_000  # training form
    assert count_params(build("repan", scale=scale, fused=True)) <= 400_000


def test_repan_fuse_keeps_outputs_and_leaves_plain_convolutions() -> None:
    torch.manual_seed(0)
    net = build("repan", scale=3).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # non-zero 1x1 branches
    x = torch.rand(2, 3, 13, 11)
    with torch.no_grad():
        before = net(x)
        after = net.fuse()(x)
    assert before.shape == (2, 3, 39, 33)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    assert not any("1x1" in name for name, _ in net.named_parameters())
    fused = build("repan", scale=3, fused=True)
    fused.load_state_dict(net.state_dict())  # the shipped form has exactly these tensors


def test_repan_pair_blends_the_outputs_of_its_two_networks() -> None:
    """``(1 - mix) * first(x) + mix * second(x)``; ``fuse`` keeps that; mix outside [0, 1] is
    refused; repan names it as its image-space blend form."""
    torch.manual_seed(0)
    pair = build("repan_pair", scale=2, features=8, blocks=2, mix=0.25).eval()
    with torch.no_grad():
        for p in pair.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        a, b = pair.first(x), pair.second(x)
        out = pair(x)
        assert not torch.allclose(a, b, atol=1e-3)  # two different networks
        torch.testing.assert_close(out, 0.75 * a + 0.25 * b, atol=1e-6, rtol=0)
        torch.testing.assert_close(pair.fuse()(x), out, atol=1e-5, rtol=0)
    assert pair.fused and out.shape == (1, 3, 18, 14)
    with pytest.raises(ValueError, match="mix must be in"):
        build("repan_pair", scale=2, mix=1.5)
    assert get_spec("repan").image_blend == "repan_pair"
    assert get_spec("espcn").image_blend is None


def test_repan_training_form_continues_from_fused_weights_exactly() -> None:
    """x2 -> x4 initialisation and resuming from shipped weights: zero 1x1 branches."""
    from srkit.train.tasks.supervised import transfer_weights
    from srkit.weights import save_model

    torch.manual_seed(1)
    trained = build("repan", scale=2)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    fused = build("repan", scale=2).eval()
    fused.load_state_dict(trained.state_dict())
    fused.fuse()
    x = torch.rand(1, 3, 10, 12)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = save_model(
            fused, Path(folder) / "m.safetensors", arch="repan", scale=2, options={"fused": True}
        )
        student = build("repan", scale=2).eval()
        loaded, skipped = transfer_weights(student, str(path))
    assert all("1x1" in s for s in skipped) and len(loaded) == len(fused.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(student(x), trained.eval()(x), atol=1e-5, rtol=0)


def test_repan_learns_the_identity_residual_from_the_start() -> None:
    """The nearest-neighbour anchor: with a zero last layer the output is the upscaled input."""
    net = build("repan", scale=2)
    with torch.no_grad():
        net.upsample.weight.zero_()
        net.upsample.bias.zero_()
    x = torch.rand(1, 3, 5, 4)
    expected = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(net(x), expected)


def test_fsrcnn_deconv_padding_places_the_centre_tap() -> None:
    # MATLAB's bicubic puts LR pixel i at HR position s*i + (s-1)/2: at x3, pixel 3i + 1
    for padding, expected in ((3, 1), (4, 0)):
        net = build("fsrcnn", scale=3, d=1, s=1, m=0, deconv_padding=padding)
        with torch.no_grad():
            net.deconv.weight.zero_()
            net.deconv.weight[0, 0, 4, 4] = 1.0
            net.deconv.bias.zero_()
        features = torch.zeros(1, 1, 5, 5)
        features[0, 0, 2, 2] = 1.0
        out = net.deconv(features)
        assert out.shape[-2:] == (15, 15)
        assert tuple(torch.nonzero(out[0, 0]).tolist()[0]) == (3 * 2 + expected,) * 2


def test_fsrcnn_shift_deconv_taps_keeps_outputs_when_the_lost_taps_are_zero() -> None:
    from srkit.archs.fsrcnn import shift_deconv_taps

    torch.manual_seed(0)
    for scale in (3, 4):
        old = build("fsrcnn", scale=scale, d=8, s=4, m=1)
        with torch.no_grad():
            old.deconv.weight[..., 0, :] = 0
            old.deconv.weight[..., :, 0] = 0
        new = build("fsrcnn", scale=scale, d=8, s=4, m=1, deconv_padding=3)
        new.load_state_dict(shift_deconv_taps(old.state_dict(), 1))
        x = torch.rand(1, 1, 11, 13)
        with torch.no_grad():
            torch.testing.assert_close(new(x), old(x))
            # and without the conversion the same weights land one pixel off
            new.load_state_dict(old.state_dict())
            assert not torch.allclose(new(x), old(x), atol=1e-3)


def test_fsrcnn_rejects_a_padding_that_breaks_the_output_size() -> None:
    with pytest.raises(ValueError, match="use one of \\[4\\]"):
        build("fsrcnn", scale=2, deconv_padding=3)


def test_count_macs_of_a_built_network_leaves_it_alone() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ConvTranspose2d(8, 2, 4, 2, 1))
    weights = [p.clone() for p in net.parameters()]
    assert count_macs(net, (1, 3, 10, 10)) == 100 * 8 * 3 * 9 + (100 * 8) * 2 * 16
    assert all(p.device.type == "cpu" for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(weights, net.parameters(), strict=True))


# --------------------------------------------------------------------------- the registry


def test_registry_is_the_explicit_list_of_arch_modules() -> None:
    """Every module of srkit/archs that declares SPECS is listed in MODULES, and each spec's
    class is defined in the module that declares it (one file per architecture)."""
    import importlib
    from pathlib import Path

    import srkit.archs as archs_pkg
    from srkit.archs.registry import MODULES

    folder = Path(archs_pkg.__file__).parent
    declaring = set()
    for path in sorted(folder.glob("*.py")):
        module = importlib.import_module(f"srkit.archs.{path.stem}")
        if hasattr(module, "SPECS"):
            declaring.add(module)
    assert declaring == set(MODULES)
    names = [spec.name for module in MODULES for spec in module.SPECS]
    assert names == list(ARCHS) and len(set(names)) == len(names)
    for module in MODULES:
        for spec in module.SPECS:
            assert spec.cls.__module__ == module.__name__, spec.name
            assert spec.reference.title and spec.description, spec.name
            assert set(spec.paper_options) <= set(spec.defaults), spec.name


def test_checkpoint_detectors_live_with_their_archs() -> None:
    from srkit.archs import detectors

    families = [d.family for d in detectors()]
    assert families == ["srgan_leftthomas", "edsr", "rrdb", "a2n", "imdn", "rlfn", "carn_m"]
    for spec in ARCHS.values():
        if spec.detector is not None:
            # the detector is declared in the arch's own module and names a registered family
            assert spec.detector.detect.__module__ == spec.cls.__module__, spec.name
            assert spec.detector.family in ARCHS
    # srkit's own state dicts of archs without a detector are not claimed by another family
    for name, spec in ARCHS.items():
        if spec.detector is None:
            net = build(name, scale=spec.scales[0], **SMALL[name])
            state = dict(net.state_dict())
            assert all(d.detect(state, name) is None for d in detectors()), name
