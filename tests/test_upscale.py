"""srkit.infer: tiling, colour handling, metadata, batch runs and the upscale CLI."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import srkit
from srkit.archs import build, get_spec
from srkit.archs.adapter import NetworkModel
from srkit.image.color import rgb_to_ycbcr
from srkit.image.io import read_image, to_tensor, write_image
from srkit.image.resize import imresize
from srkit.infer import Upscaler
from srkit.infer.batch import open_inputs, plan_jobs, run_batch
from srkit.infer.tiling import plan_tiles, run_tiled
from srkit.models import InterpolationModel, SelfEnsemble
from srkit.weights import save_model


def tiny_rgb(scale: int = 2, seed: int = 0) -> NetworkModel:
    """EDSR-baseline with 1 block, 8 features: RGB in [0, 255] with the mean shift."""
    torch.manual_seed(seed)
    net = build("edsr_baseline", scale=scale, blocks=1, features=8)
    return NetworkModel(net, scale, get_spec("edsr_baseline").convention, "tiny_edsr")


def tiny_y(scale: int = 3, seed: int = 0) -> NetworkModel:
    """ESPCN with 8/4 features: a Y-only network."""
    torch.manual_seed(seed)
    net = build("espcn", scale=scale, n1=8, n2=4)
    return NetworkModel(net, scale, get_spec("espcn").convention, "tiny_espcn")


@pytest.fixture
def weight_file(tmp_path: Path) -> Path:
    torch.manual_seed(1)
    net = build("edsr_baseline", scale=2, blocks=1, features=8)
    options = {"blocks": 1, "features": 8}
    return save_model(net, tmp_path / "w" / "tiny", arch="edsr_baseline", scale=2, options=options)


def smooth_image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth structure plus noise, uint8 (H, W, C)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((h // 8 + 2, w // 8 + 2, channels)).astype(np.float32)
    planes = [
        np.asarray(Image.fromarray(coarse[..., c]).resize((w, h), Image.BICUBIC))
        for c in range(channels)
    ]
    image = np.stack(planes, axis=-1) * 200 + rng.random((h, w, channels)) * 40
    return np.clip(image, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- tiling


def test_tiles_partition_of_unity() -> None:
    """Nearest-neighbour 'model': any tiling must reproduce it exactly (weights sum to 1)."""
    x = torch.rand(1, 3, 37, 29)
    model = InterpolationModel("nearest", 3, "nearest")
    whole = model(x)
    for tile, overlap in ((8, 0), (10, 4), (7, 6), (64, 16)):
        plan = plan_tiles(37, 29, 3, tile, overlap)
        blocks = list(
            run_tiled(
                lambda t: model(torch.from_numpy(t)).numpy(),
                lambda a, b, c, d: x[:, :, a:b, c:d].numpy(),
                plan,
            )
        )
        rows = [r for r, _ in blocks]
        assert rows == sorted(rows) and rows[0] == 0
        out = torch.from_numpy(np.concatenate([b for _, b in blocks], axis=1))
        assert out.shape == (3, 37 * 3, 29 * 3)
        torch.testing.assert_close(out, whole[0], atol=1e-6, rtol=0)


def test_tiled_equals_whole_image_within_1_over_255() -> None:
    model = tiny_rgb()
    pixels = smooth_image(70, 53)
    whole = Upscaler(model, tile=0).upscale_array(pixels)
    tiled_up = Upscaler(model, tile=20, overlap=16)
    assert tiled_up.plan(70, 53).count == 12
    tiled = tiled_up.upscale_array(pixels)
    assert tiled.shape == (140, 106, 3)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1
    # float level: only rounding noise
    x = to_tensor(pixels).unsqueeze(0)
    torch.testing.assert_close(tiled_up.upscale_tensor(x), model(x), atol=2e-5, rtol=0)


def test_too_little_overlap_shows_seams() -> None:
    """The equality above is not vacuous: without overlap the tiles differ from the whole."""
    model = tiny_rgb()
    pixels = smooth_image(70, 53)
    whole = Upscaler(model, tile=0).upscale_array(pixels)
    seams = Upscaler(model, tile=20, overlap=0).upscale_array(pixels)
    assert np.abs(seams.astype(int) - whole.astype(int)).max() > 1


def test_auto_tile_size_bounded_and_whole_for_small_images() -> None:
    up = Upscaler(tiny_rgb(scale=4), memory_budget=256 << 20)
    assert up.tile_size(64, 48) == 64  # small image: one tile
    big = up.tile_size(4320, 7680)
    assert 32 <= big < 4320
    # the accumulator for one row of tiles stays within the budget
    rows_bytes = (big + 2 * up.overlap) * 4 * 7680 * 4 * 3 * 4
    assert rows_bytes <= 256 << 20


# --------------------------------------------------------------------------- colour


def test_y_only_model_upscales_y_and_bicubic_cbcr() -> None:
    model = tiny_y(scale=3)
    x = to_tensor(smooth_image(31, 26)).unsqueeze(0)
    up = Upscaler(model, tile=12, overlap=8)
    out = up.upscale_tensor(x)
    assert out.shape == (1, 3, 93, 78)
    torch.testing.assert_close(out, model(x), atol=2e-5, rtol=0)  # tiled == whole
    ycc_in, ycc_out = rgb_to_ycbcr(x), rgb_to_ycbcr(out)
    torch.testing.assert_close(ycc_out[:, 1:], imresize(ycc_in[:, 1:], scale=3), atol=1e-4, rtol=0)
    y_net = model.run_net(ycc_in[:, :1])
    torch.testing.assert_close(ycc_out[:, :1], y_net, atol=1e-4, rtol=0)


def test_grayscale_stays_grayscale(tmp_path: Path) -> None:
    gray = smooth_image(30, 22, channels=1)
    src = write_image(tmp_path / "g.png", gray[:, :, 0])
    up = Upscaler(tiny_rgb())
    target = up.upscale_file(src, tmp_path / "out" / "g.png")
    result = read_image(target)
    assert result.is_gray and result.pixels.shape == (60, 44, 1)
    # the channel mean of the model's RGB output, rounded
    rgb = tiny_rgb()(to_tensor(np.repeat(gray, 3, axis=2)).unsqueeze(0))
    expected = rgb.mean(1)[0].clamp(0, 1).mul(255).round().numpy()
    assert np.abs(result.pixels[:, :, 0].astype(float) - expected).max() <= 1


def test_alpha_upscaled_separately_with_bicubic(tmp_path: Path) -> None:
    rgb = smooth_image(24, 20)
    alpha = smooth_image(24, 20, channels=1, seed=5)[:, :, 0]
    src = write_image(tmp_path / "a.png", rgb, alpha=alpha)
    target = Upscaler(tiny_rgb(), tile=10, overlap=8).upscale_file(src, tmp_path / "o.png")
    result = read_image(target)
    assert result.alpha is not None and result.alpha.shape == (48, 40)
    expected = imresize(torch.from_numpy(alpha).float()[None, None] / 255, scale=2)
    expected = expected[0, 0].clamp(0, 1).mul(255).round().numpy()
    assert np.abs(result.alpha.astype(float) - expected).max() <= 1
    # the colour does not depend on alpha
    plain = Upscaler(tiny_rgb()).upscale_array(rgb)
    assert np.abs(result.pixels.astype(int) - plain.astype(int)).max() <= 1


def test_16bit_in_16bit_out(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    pixels16 = smooth_image(20, 18).astype(np.uint16) * 257 + rng.integers(0, 257, (20, 18, 3))
    pixels16 = pixels16.astype(np.uint16)
    src = write_image(tmp_path / "deep.png", pixels16)
    result = read_image(Upscaler(tiny_rgb()).upscale_file(src, tmp_path / "deep_x2.png"))
    assert result.bit_depth == 16 and result.pixels.dtype == np.uint16
    expected = tiny_rgb()(to_tensor(pixels16).unsqueeze(0))[0]
    expected = expected.clamp(0, 1).mul(65535).round().permute(1, 2, 0).numpy()
    assert np.abs(result.pixels.astype(float) - expected).max() <= 2
    assert np.any(result.pixels % 257 != 0)  # more than 8 bits of information


def test_16bit_gray_with_alpha_array_api() -> None:
    arr = np.stack([smooth_image(16, 12, 1)[:, :, 0].astype(np.uint16) * 257] * 2, axis=2).astype(
        np.uint16
    )
    out = Upscaler(tiny_rgb()).upscale_array(arr)
    assert out.shape == (32, 24, 2) and out.dtype == np.uint16


def test_icc_profile_and_exif_kept(tmp_path: Path) -> None:
    icc = b"\x00\x00\x02\x0cfake icc profile bytes" + bytes(100)
    exif = Image.Exif()
    exif[0x010F] = "srkit test camera"
    pixels = smooth_image(12, 10)
    src = write_image(tmp_path / "m.png", pixels, icc_profile=icc, exif=exif.tobytes())
    up = Upscaler(tiny_rgb())
    for name in ("m_x2.png", "m_x2.jpg"):
        result = read_image(up.upscale_file(src, tmp_path / name))
        assert result.icc_profile == icc
        assert result.exif is not None
        assert b"srkit test camera" in result.exif


def test_streamed_png_matches_in_memory(tmp_path: Path) -> None:
    pixels = smooth_image(45, 37)
    up = Upscaler(tiny_rgb(), tile=16, overlap=8)
    memory = up.upscale_array(pixels)
    src = write_image(tmp_path / "s.png", pixels)
    streamed = read_image(up.upscale_file(src, tmp_path / "s_x2.png")).pixels
    np.testing.assert_array_equal(streamed, memory)
    # the deflate level changes the file's size, never its pixels
    sizes = {}
    for level in (0, 9):
        out = Upscaler(tiny_rgb(), tile=16, overlap=8, png_level=level).upscale_file(
            src, tmp_path / f"level{level}.png"
        )
        np.testing.assert_array_equal(read_image(out).pixels, memory)
        sizes[level] = out.stat().st_size
    assert sizes[9] < sizes[0]
    with pytest.raises(ValueError, match="png_level"):
        Upscaler(tiny_rgb(), png_level=10)


def test_self_ensemble_inverts_its_transforms() -> None:
    """MATLAB bicubic is flip/transpose equivariant: its ensemble must equal it."""
    model = InterpolationModel("bicubic", 2)
    x = torch.rand(1, 3, 11, 7)
    torch.testing.assert_close(SelfEnsemble(model)(x), model(x), atol=1e-5, rtol=0)
    net = tiny_rgb()
    assert (SelfEnsemble(net)(x) - net(x)).abs().max() > 1e-4  # it does average 8 runs


def test_upscale_api_types(weight_file: Path) -> None:
    arr = smooth_image(14, 10)
    out = srkit.upscale(arr, model=weight_file)
    assert out.shape == (28, 20, 3) and out.dtype == np.uint8
    pil = srkit.upscale(Image.fromarray(arr).convert("RGBA"), model=weight_file)
    assert pil.size == (20, 28) and pil.mode == "RGBA"
    t = srkit.Upscaler(weight_file)(torch.rand(3, 9, 8))
    assert t.shape == (3, 18, 16)


# --------------------------------------------------------------------------- batch


def _png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _inputs(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(smooth_image(12, 10)).save(root / "a.png")
    Image.fromarray(smooth_image(10, 12, seed=2)).save(root / "sub" / "b.jpg")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with zipfile.ZipFile(tmp_path / "pack.zip", "w") as archive:
        archive.writestr("z/c.png", _png_bytes(smooth_image(8, 8, seed=3)))
        archive.writestr("z/d.png", b"garbage")
    return root


def test_batch_skips_bad_files_and_mirrors_names(tmp_path: Path) -> None:
    root = _inputs(tmp_path)
    sources, failed = open_inputs([str(root), str(tmp_path / "pack.zip"), "nope/*.png"], True)
    assert [label for label, _ in failed] == ["nope/*.png"] and "not found" in failed[0][1]
    jobs, collisions = plan_jobs(sources, tmp_path / "out")
    assert not collisions
    result = run_batch(Upscaler(tiny_rgb()), jobs)
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in result.written) == [
        "a.png",
        "sub/b.png",
        "z/c.png",
    ]
    assert read_image(out / "sub" / "b.png").pixels.shape == (20, 24, 3)
    reasons = dict(result.failed)
    assert set(reasons) == {str(root / "broken.png"), f"{tmp_path / 'pack.zip'}:z/d.png"}
    assert all(reasons.values())
    assert not result.ok


def test_no_silent_overwrite(tmp_path: Path) -> None:
    src = write_image(tmp_path / "x.png", smooth_image(10, 10))
    target = tmp_path / "out" / "x.png"
    target.parent.mkdir()
    target.write_bytes(b"keep me")
    sources, _ = open_inputs([str(src)])
    jobs, _ = plan_jobs(sources, tmp_path / "out")
    result = run_batch(Upscaler(tiny_rgb()), jobs)
    assert target.read_bytes() == b"keep me"
    assert "exists" in result.failed[0][1] and "--overwrite" in result.failed[0][1]
    with pytest.raises(FileExistsError):
        Upscaler(tiny_rgb()).upscale_file(src, target)
    assert target.read_bytes() == b"keep me"
    result = run_batch(Upscaler(tiny_rgb()), jobs, overwrite=True)
    assert result.ok and read_image(target).pixels.shape == (20, 20, 3)


def test_cli_upscale_summary_and_exit_code(tmp_path: Path, weight_file: Path) -> None:
    from typer.testing import CliRunner

    from srkit.cli import _expand_variadic, app

    root = _inputs(tmp_path)
    args = ["upscale", str(root), "-o", str(tmp_path / "o"), "--model", str(weight_file)]
    result = CliRunner().invoke(app, _expand_variadic([*args, "--recursive", "--format", "jpg"]))
    assert result.exit_code == 1, result.output
    assert "broken.png" in result.output
    assert "2 written, 1 failed" in result.output
    assert (tmp_path / "o" / "sub" / "b.jpg").is_file()
    # one good file: exit 0; --scale before the positional inputs still works
    args = ["upscale", "--scale", "2", str(root / "a.png"), "-o", str(tmp_path / "one.png")]
    result = CliRunner().invoke(
        app, _expand_variadic([*args, "--model", str(weight_file), "--tile", "8"])
    )
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "one.png").pixels.shape == (24, 20, 3)


# --------------------------------------------------------------------------- other descriptors


class _TinySameSize(torch.nn.Module):
    """A 3 x 3 convolution: the smallest scale-1 network (a style model's shape)."""

    def __init__(self, scale: int = 1, features: int = 3) -> None:
        super().__init__()
        self.scale = scale
        self.conv = torch.nn.Conv2d(3, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.fixture
def tiny_same_size_arch(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register a scale-1 architecture for this test only (the registry is a plain dict)."""
    from srkit.archs import ARCHS, ArchSpec, Reference
    from srkit.archs.common import RGB01

    spec = ArchSpec(
        name="tiny_same_size",
        cls=_TinySameSize,
        defaults={"features": 3},
        scales=(1,),
        convention=RGB01,
        reference=Reference("test", "a 3 x 3 convolution", "tests", 2026),
    )
    monkeypatch.setitem(ARCHS, spec.name, spec)
    return spec.name


def _run_cli(*args: str):
    from typer.testing import CliRunner

    from srkit.cli import _expand_variadic, app

    return CliRunner().invoke(app, _expand_variadic(list(args)))


def test_scale_1_model_saved_loaded_and_run_by_srkit_upscale(
    tmp_path: Path, tiny_same_size_arch: str
) -> None:
    from srkit.weights import load, read_manifest

    torch.manual_seed(0)
    net = _TinySameSize()
    path = save_model(net, tmp_path / "style", arch=tiny_same_size_arch, scale=1, purpose="style")
    manifest = read_manifest(path)
    assert manifest["scale"] == 1 and manifest["purpose"] == "style"
    model = load(path)
    assert model.scale == 1 and model.info["purpose"] == "style"
    image = smooth_image(20, 26)
    write_image(tmp_path / "in.png", image)
    result = _run_cli("upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                      "--model", str(path), "--tile", "8")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "x1" in result.output
    out = read_image(tmp_path / "out.png").pixels
    assert out.shape == (20, 26, 3)
    with torch.no_grad():
        expected = net(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    expected = (expected.clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(out.astype(np.float32) - expected).max() <= 1  # tiles meet without seams


def test_fixed_input_size_is_kept_and_other_sizes_are_refused(
    tmp_path: Path, tiny_same_size_arch: str
) -> None:
    from srkit.archs import InputConvention
    from srkit.weights import load

    face = InputConvention("rgb", 1.0, None, input_size=(16, 12))  # height, width
    path = save_model(_TinySameSize(), tmp_path / "face", arch=tiny_same_size_arch, scale=1,
                      convention=face, purpose="face")  # fmt: skip
    assert '"input_size": [\n      16,\n      12\n    ]' in path.read_text()
    model = load(path)
    assert model.convention.input_size == (16, 12)
    assert Upscaler(path).tile_size(16, 12) == 16  # seen whole, never tiled
    write_image(tmp_path / "crop.png", smooth_image(16, 12))
    write_image(tmp_path / "photo.png", smooth_image(20, 30))
    result = _run_cli("upscale", str(tmp_path / "crop.png"), str(tmp_path / "photo.png"),
                      "-o", str(tmp_path / "out"), "--model", str(path), "--tile", "4")  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "1 written, 1 failed" in result.output
    failure = [line for line in result.output.splitlines() if "photo.png" in line]
    assert len(failure) == 1 and "exactly 12x16 pixels" in failure[0] and "is 30x20" in failure[0]
    assert "Traceback" not in result.output
    assert read_image(tmp_path / "out" / "crop.png").pixels.shape == (16, 12, 3)
    assert not (tmp_path / "out" / "photo.png").exists()  # no partial output
    with pytest.raises(ValueError, match="self-ensemble transposes"):
        Upscaler(path, ensemble=True)


def test_every_tile_reads_the_same_size() -> None:
    """Edge tiles read further in instead of being clipped: one input shape per image, so a
    static-shape backend compiles once; the output is unchanged (partition of unity above)."""
    for height, width, tile, overlap in ((1080, 1920, 640, 16), (37, 29, 7, 6), (100, 33, 25, 0)):
        plan = plan_tiles(height, width, 4, tile, overlap)
        assert len({(r.in1 - r.in0, c.in1 - c.in0) for r in plan.rows for c in plan.cols}) == 1
        for spans, length in ((plan.rows, height), (plan.cols, width)):
            assert spans[0].core0 == 0 and spans[-1].core1 == length
            for span in spans:  # every core inside what its tile reads, inside the image
                assert 0 <= span.in0 <= span.core0 < span.core1 <= span.in1 <= length
                assert span.core0 - span.in0 >= min(overlap, span.core0)
                assert span.in1 - span.core1 >= min(overlap, length - span.core1)


def test_a_missing_input_is_named_not_blamed_on_the_output(tmp_path: Path) -> None:
    result = _run_cli("upscale", str(tmp_path / "nope.png"), "-o", str(tmp_path / "out.png"),
                      "--model", "bicubic", "--scale", "2", "--backend", "torch")  # fmt: skip
    assert result.exit_code == 1
    assert "nope.png: no such file or folder" in result.output
    assert "a file name, but" not in result.output
    assert not (tmp_path / "out.png").exists()


def test_tiles_reusing_one_buffer_give_the_same_blocks() -> None:
    """``reuse=True`` (one accumulation buffer for every row of tiles) changes no value."""
    x = torch.rand(1, 3, 301, 30)
    model = InterpolationModel("bicubic", 2, "bicubic")
    plan = plan_tiles(301, 30, 2, 130, 4)
    assert len(plan.rows) > 2  # rows of several heights share the buffer, over 2 bands each

    def run(tile):
        return model(torch.from_numpy(tile)).numpy()

    def read(a, b, c, d):
        return x[:, :, a:b, c:d].numpy()

    fresh = [(r, block.copy()) for r, block in run_tiled(run, read, plan)]
    shared = [(r, block.copy()) for r, block in run_tiled(run, read, plan, reuse=True)]
    assert [r for r, _ in fresh] == [r for r, _ in shared]
    for (_, a), (_, b) in zip(fresh, shared, strict=True):
        np.testing.assert_array_equal(a, b)
