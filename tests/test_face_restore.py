"""``srkit faces restore``: faces found, super-resolved and pasted back over the background.

Real faces come from LFW (``../shared``; skipped when absent) and dlib finds them; the face
models are small random networks the tests make (what is tested is the pipeline, not a model).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from srkit.archs import build
from srkit.data.builtin import data_dir
from srkit.faces.detect import Box
from srkit.faces.restore import FaceRestorer, merge_boxes, restore_images
from srkit.image.io import read_image, write_image
from srkit.image.resize import imresize, quantize_uint8
from srkit.weights import save_model

LFW_ZIP = data_dir() / "faces" / "lfw" / "lfw-deepfunneled.zip"


def test_merge_boxes_keeps_new_faces_only() -> None:
    hog = [Box(10, 10, 50, 50)]
    cnn = [Box(12, 12, 52, 48), Box(100, 10, 130, 40)]
    merged = merge_boxes(hog, cnn)
    assert merged == [hog[0], cnn[1]]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("dlib", reason="dlib (pip install dlib-bin) is not installed")
    if not LFW_ZIP.is_file():
        pytest.skip(f"LFW not found at {LFW_ZIP} (set SRKIT_DATA)")
    from srkit.faces.lfw import LFW

    lfw = LFW(LFW_ZIP)
    a = lfw.read("Aaron_Peirsol/Aaron_Peirsol_0001.jpg")
    b = lfw.read("Abdullah_Gul/Abdullah_Gul_0001.jpg")
    x = torch.from_numpy(np.concatenate([a, b], 1)).permute(2, 0, 1)[None].double()
    two = quantize_uint8(imresize(x, scale=0.5)[0]).permute(1, 2, 0).numpy()  # 250x125
    root = tmp_path_factory.mktemp("photos")
    write_image(root / "two.png", two)
    sky = np.zeros((60, 90, 3), np.uint8)
    sky[..., 2] = np.linspace(80, 220, 90, dtype=np.uint8)[None]
    write_image(root / "sky.png", sky)
    return {"two": root / "two.png", "sky": root / "sky.png", "root": root}


def _face_model(path: Path, seed: int, scale: int = 4) -> Path:
    torch.manual_seed(seed)
    net = build("repan_face", scale=scale, features=8, blocks=1, up_features=[8, 8, 8])
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return save_model(net, path, arch="repan_face", scale=scale, purpose="face",
                      options={"features": 8, "blocks": 1, "up_features": [8, 8, 8]})  # fmt: skip


def _bicubic(image: np.ndarray, scale: int) -> np.ndarray:
    from srkit.infer.upscaler import Upscaler

    return Upscaler("bicubic", scale=scale).upscale_array(image)


def test_restore_finds_two_faces_and_keeps_the_background(photos, tmp_path) -> None:
    model = _face_model(tmp_path / "f.safetensors", 0)
    restorer = FaceRestorer(str(model), scale=4, background="bicubic", detector="hog")
    image = read_image(photos["two"]).to_rgb8()
    result = restorer.restore(image)
    assert len(result.faces) == 2 and not result.skipped
    assert result.image.shape == (image.shape[0] * 4, image.shape[1] * 4, 3)
    background = _bicubic(image, 4)
    changed = np.abs(result.image.astype(int) - background.astype(int)).max(axis=2) > 0
    # each face's box (x4) changed; the top-left corner, far from both faces, did not
    for box in result.faces:
        window = changed[box.top * 4 : box.bottom * 4, box.left * 4 : box.right * 4]
        assert window.mean() > 0.5
    assert not changed[:20, :20].any()
    assert changed.mean() < 0.8


def test_restore_of_a_photo_without_faces_is_the_background(photos, tmp_path) -> None:
    model = _face_model(tmp_path / "f.safetensors", 0)
    restorer = FaceRestorer(str(model), scale=2, background="bicubic")
    image = read_image(photos["sky"]).to_rgb8()
    result = restorer.restore(image)
    assert result.faces == [] and np.array_equal(result.image, _bicubic(image, 2))


def test_min_face_leaves_small_faces_to_the_background(photos, tmp_path) -> None:
    model = _face_model(tmp_path / "f.safetensors", 0)
    restorer = FaceRestorer(str(model), scale=2, background="bicubic", detector="hog",
                            min_face=500)  # fmt: skip
    image = read_image(photos["two"]).to_rgb8()
    result = restorer.restore(image)
    assert result.faces == [] and len(result.skipped) == 2
    assert np.array_equal(result.image, _bicubic(image, 2))


def test_fidelity_blends_the_pixel_and_identity_models(photos, tmp_path) -> None:
    identity = _face_model(tmp_path / "id.safetensors", 1)
    pixel = _face_model(tmp_path / "px.safetensors", 2)
    image = read_image(photos["two"]).to_rgb8()

    def run(fidelity):
        r = FaceRestorer(str(identity), scale=2, background="bicubic", detector="hog",
                         pixel_model=str(pixel), fidelity=fidelity)  # fmt: skip
        return r.restore(image).image.astype(int)

    only_pixel = FaceRestorer(str(pixel), scale=2, background="bicubic", detector="hog")
    only_identity = FaceRestorer(str(identity), scale=2, background="bicubic", detector="hog")
    assert np.array_equal(run(1.0), only_pixel.restore(image).image)
    assert np.array_equal(run(0.0), only_identity.restore(image).image)
    half = run(0.5)
    assert np.abs(half - run(0.0)).max() > 10 and np.abs(half - run(1.0)).max() > 10
    with pytest.raises(ValueError, match="fidelity"):
        FaceRestorer(str(identity), fidelity=0.5)


def test_aligned_crops_are_super_resolved_directly(tmp_path) -> None:
    model = _face_model(tmp_path / "f.safetensors", 0)
    restorer = FaceRestorer(str(model), scale=4, background="bicubic")
    crop = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    out = restorer.restore_aligned(crop)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    with torch.no_grad():
        want = restorer.face(torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0)
    want = quantize_uint8(want.clamp(0, 1)[0].double() * 255.0).permute(1, 2, 0).numpy()
    # the same network on the same values; the input's memory layout may pick another conv
    # kernel (a last-bit difference), which can move a pixel by one level after rounding
    diff = np.abs(out.astype(int) - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "c.png", crop)
    report = restore_images(tmp_path / "in", tmp_path / "out", restorer, aligned=True)
    assert report.faces == {"c.png": 1} and (tmp_path / "out" / "c.png").is_file()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "srkit.cli", "faces", "restore", *args],
                          capture_output=True, text=True)  # fmt: skip


def test_cli_restores_a_folder_and_reports_faces(photos, tmp_path) -> None:
    model = _face_model(tmp_path / "f.safetensors", 0)
    out = tmp_path / "out"
    done = _cli(str(photos["root"]), "-o", str(out), "--model", str(model), "--background",
                "bicubic", "--scale", "2", "--detector", "hog")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "two.png: 2 faces" in done.stdout and "sky.png: 0 faces" in done.stdout
    assert read_image(out / "two.png").to_rgb8().shape == (250, 500, 3)


def test_cli_errors_are_one_line(tmp_path) -> None:
    model = _face_model(tmp_path / "f.safetensors", 0)
    missing = _cli(str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o.png"), "--model",
                   str(model), "--background", "bicubic")  # fmt: skip
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert not (tmp_path / "o.png").exists()
    bad = _cli(str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o.png"), "--model", "nomodel",
               "--background", "bicubic")  # fmt: skip
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "nomodel" in bad.stderr
    wrong = _cli(str(tmp_path), "-o", str(tmp_path / "o"), "--model", str(model),
                 "--fidelity", "0.5")  # fmt: skip
    assert wrong.returncode != 0 and "--pixel-model" in wrong.stderr
