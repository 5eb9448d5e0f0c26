"""The faces eval protocol end to end on a handful of LFW faces, its cache, JSON/CSV, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from srkit.faces.degrade import load_degradation
from srkit.faces.evaluate import verification_accuracy
from srkit.faces.lfw import default_lfw_zip
from srkit.faces.paths import data_dir

LFW_ZIP = default_lfw_zip()
CELEBA = data_dir() / "faces" / "celeba-align-32"
JSON_FIELDS = [
    "model", "scale", "dataset", "n_images", "id_distance", "id_cosine", "psnr", "ssim",
    "verif_acc_06", "verif_acc_best", "landmark_nme", "ms_per_face", "seconds",
]  # fmt: skip


def test_verification_accuracy_threshold_and_folds():
    d = np.array([0.1, 0.2, 0.5, 0.7, 0.3, 0.8, 0.9, 1.0])
    same = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    at, best = verification_accuracy(d, same, np.zeros(8), 0.6)
    assert at == pytest.approx(6 / 8)  # 0.7 (same) and 0.3 (different) are wrong
    assert best == pytest.approx(7 / 8)  # t in (0.7, 0.8): only 0.3 (different) is wrong
    # k-fold: the threshold is chosen on the other folds, so a perfectly separable set whose
    # folds disagree on the threshold loses accuracy
    d2 = np.array([0.1, 0.65, 0.3, 0.9, 0.4, 0.8, 0.6, 0.95])
    same2 = np.array([1, 0, 1, 0, 1, 0, 1, 0], bool)
    folds = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    _, best_cv = verification_accuracy(d2, same2, folds, None)
    _, best_all = verification_accuracy(d2, same2, np.zeros(8), None)
    assert best_all == 1.0 and best_cv < 1.0


def test_degradations(tmp_path):
    from srkit.bench.protocol import matlab_bicubic_lr

    hr = torch.randint(0, 256, (3, 3, 128, 128), dtype=torch.uint8)
    default = load_degradation(None)
    assert default.is_default
    lr = default(hr, 8)
    assert lr.shape == (3, 3, 16, 16) and lr.dtype == torch.uint8
    assert torch.equal(lr, matlab_bicubic_lr(hr, 8))
    f = tmp_path / "jpeg_noise.yaml"
    f.write_text(
        "steps:\n  - {type: resize, method: bicubic}\n"
        "  - {type: gaussian_noise, sigma: [1, 5]}\n  - {type: jpeg, quality: 30}\n"
    )
    deg = load_degradation(f)
    assert not deg.is_default and deg.describe() == "jpeg_noise"
    out = deg(hr, 4)
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.uint8
    assert not torch.equal(out, default(hr, 4))
    # per-image seeding: the same image index gives the same LR whatever the batching
    assert torch.equal(deg(hr[1:], 4, first_index=1), out[1:])
    assert not torch.equal(deg(hr[1:], 4, first_index=0), out[1:])
    f.write_text("steps:\n  - {type: sharpen}\n")
    with pytest.raises(ValueError, match="type"):
        load_degradation(f)


@pytest.fixture(scope="module")
def small_lfw(tmp_path_factory):
    pytest.importorskip("dlib", reason="dlib (pip install dlib-bin) is not installed")
    if not LFW_ZIP.is_file():
        pytest.skip(f"LFW zip absent: {LFW_ZIP} (set SRKIT_DATA)")
    d = tmp_path_factory.mktemp("lfw_lists")
    pairs = d / "pairs_small.txt"
    pairs.write_text(
        "2\nAaron_Peirsol\t1\t2\nAbdullah_Gul\t1\t13\n"
        "Aaron_Peirsol\t1\tAbdullah_Gul\t1\nSerena_Williams\t1\tAaron_Peirsol\t2\n"
    )
    return pairs


def test_eval_end_to_end_and_cache(small_lfw, tmp_path, monkeypatch):
    from srkit.faces.embed import get_embedder
    from srkit.faces.evaluate import lfw_faceset, prepare, run_faces_eval

    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    kw = dict(data=LFW_ZIP, pairs=small_lfw, workers=1, progress=False, log=None)
    out = run_faces_eval(
        ["bicubic"], 4, csv_path=tmp_path / "x4.csv", json_path=tmp_path / "x4.json", **kw
    )
    assert json.loads((tmp_path / "x4.json").read_text()) == out
    (row,) = out["results"]
    assert list(row) == JSON_FIELDS
    assert row["model"] == "bicubic" and row["scale"] == 4 and row["n_images"] == 5
    assert row["dataset"] == "lfw-pairs_small"
    assert 0.05 < row["id_distance"] < 0.45 and 0.9 < row["id_cosine"] < 1.0
    assert 22 < row["psnr"] < 40 and 0.6 < row["ssim"] < 1.0
    assert row["verif_acc_06"] in (0.5, 0.75, 1.0) and row["verif_acc_best"] >= 0.75
    assert 0.0 < row["landmark_nme"] < 0.1 and row["ms_per_face"] > 0
    rows = list(csv.reader((tmp_path / "x4.csv").open()))
    assert rows[0] == ["image", "detected", "id_distance", "id_cosine", "psnr", "ssim"]
    assert len(rows) == 1 + 5 + 1 and rows[-1][0] == "mean"
    assert float(rows[-1][2]) == pytest.approx(row["id_distance"], abs=1e-6)
    assert rows[1][0] == "Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
    # x8 loses more identity than x4
    x8 = run_faces_eval(["bicubic"], 8, **kw)["results"][0]
    assert x8["id_distance"] > row["id_distance"] and x8["psnr"] < row["psnr"]
    assert x8["landmark_nme"] > row["landmark_nme"]  # and its landmarks drift further
    # the model-independent work is cached on disk and reused
    fs = lfw_faceset(LFW_ZIP, small_lfw)
    p = prepare(fs, get_embedder(), workers=1)
    assert p.from_cache and p.hr().shape == (5, 3, 128, 128)
    assert p.extra("hr_embedding").shape == (5, 128)
    assert len(list((tmp_path / "cache" / "faces").iterdir())) == 1
    # HR landmarks in the crop sit on the template
    from srkit.faces.align import TEMPLATES

    err = np.abs(p.extra("landmarks_dlib5") - TEMPLATES["facesr128"].points).max()
    assert err < 6
    # a damaged cache is recomputed, with a warning
    (p.path / "hr_embedding.npy").unlink()
    with pytest.warns(UserWarning, match="damaged cache"):
        again = prepare(fs, get_embedder(), workers=1)
    assert not again.from_cache
    np.testing.assert_allclose(again.extra("hr_embedding"), p.extra("hr_embedding"), atol=1e-5)


def test_folder_eval_with_bad_and_faceless_images(tmp_path, monkeypatch):
    pytest.importorskip("dlib", reason="dlib (pip install dlib-bin) is not installed")
    if not CELEBA.is_dir():
        pytest.skip(f"CelebA samples absent: {CELEBA}")
    import shutil

    from PIL import Image

    from srkit.faces.evaluate import run_faces_eval

    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("000001.jpg", "000002.jpg"):
        shutil.copy(CELEBA / name, folder / name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    Image.new("RGB", (120, 120), (90, 90, 90)).save(folder / "wall.png")
    recipe = tmp_path / "jpeg40.yaml"
    recipe.write_text("steps:\n  - {type: jpeg, quality: 40}\n")
    jpeg = load_degradation(recipe)
    out = run_faces_eval(
        ["bicubic"], 4, data=folder, degradation=jpeg, workers=1, progress=False, log=None
    )
    row = out["results"][0]
    assert row["n_images"] == 2 and row["verif_acc_06"] is None and row["verif_acc_best"] is None
    assert row["dataset"] == "faces+jpeg40"
    from srkit.faces.evaluate import folder_faceset, prepare

    p = prepare(folder_faceset(folder), workers=1)
    assert set(p.skipped) == {"broken.jpg", "wall.png"}
    assert "no face found" in p.skipped["wall.png"] and "broken.jpg" in p.skipped["broken.jpg"]


def test_celeba_preprocessing():
    if not CELEBA.is_dir():
        pytest.skip(f"CelebA samples absent: {CELEBA}")
    from srkit.faces.align import align
    from srkit.faces.celeba import celeba_crop_landmarks, celeba_preprocess, read_celeba_landmarks
    from srkit.image.io import read_rgb

    lms = read_celeba_landmarks(CELEBA / "list_landmarks_align_celeba_subset.csv")
    assert len(lms) == 32
    np.testing.assert_array_equal(lms["000001.jpg"][0], [69, 109])
    img = read_rgb(CELEBA / "000001.jpg")
    assert img.shape == (218, 178, 3)
    levels = celeba_preprocess(img)
    assert {k: v.shape for k, v in levels.items()} == {
        128: (128, 128, 3), 64: (64, 64, 3), 32: (32, 32, 3), 16: (16, 16, 3)
    }  # fmt: skip
    pts = celeba_crop_landmarks(lms["000001.jpg"], img.shape[:2])
    # CelebA's landmarks align the 128 HR to the SphereFace template with little residual
    x = torch.from_numpy(levels[128]).permute(2, 0, 1)[None].double()
    crop, m = align(x, pts, "sphereface")
    assert crop.shape == (1, 3, 112, 96)
    assert 0.6 < np.sqrt(np.linalg.det(m[0, :, :2].numpy())) < 1.6


def test_eval_with_an_onnx_embedder(small_lfw, tmp_path, monkeypatch):
    """The embedder is pluggable: an ONNX model aligned to ArcFace's template (68-pt landmarks)."""
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (optional)")
    onnx = pytest.importorskip("onnx", reason="onnx not installed (needed to build a test model)")
    from onnx import TensorProto, helper, numpy_helper

    from srkit.faces.evaluate import run_faces_eval

    # a toy "face model": 8x8 average pooling then a fixed projection
    w = np.random.default_rng(0).normal(size=(3 * 14 * 14, 32)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[8, 8], strides=[8, 8]),
            helper.make_node("Flatten", ["p"], ["f"]),
            helper.make_node("MatMul", ["f", "w"], ["y"]),
        ],
        "toy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 112, 112])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 32])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    path = tmp_path / "toy.onnx"
    onnx.save(model, path)
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    out = run_faces_eval(
        ["bicubic"], 4, data=LFW_ZIP, pairs=small_lfw, embedder=str(path), workers=1,
        progress=False, log=None,
    )  # fmt: skip
    row = out["results"][0]
    assert row["n_images"] == 5 and 0.9 < row["id_cosine"] <= 1.0
    assert row["verif_acc_06"] is None  # no threshold known for a user model
    assert row["verif_acc_best"] is not None
    (cached,) = (tmp_path / "cache" / "faces").iterdir()
    assert (cached / "landmarks_eyes_nose_mouth.npy").is_file()


def test_landmarks68_to_5():
    from srkit.faces.align import landmarks68_to_5

    p = np.arange(68 * 2, dtype=float).reshape(68, 2)
    five = landmarks68_to_5(p)
    np.testing.assert_allclose(five[0], p[36:42].mean(0))
    np.testing.assert_allclose(five[1], p[42:48].mean(0))
    np.testing.assert_allclose(five[2:], p[[30, 48, 54]])
    d5 = landmarks68_to_5(torch.from_numpy(p), "dlib5")
    assert isinstance(d5, torch.Tensor) and d5.shape == (5, 2)
    np.testing.assert_allclose(d5.numpy(), p[[45, 42, 36, 39, 33]])


def test_eval_on_deployment_backends_scores_each_backend(small_lfw, tmp_path, monkeypatch):
    from srkit.archs import build
    from srkit.faces.evaluate import run_faces_eval
    from srkit.weights import save_model

    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    options = {"features": 8, "blocks": 1, "up_features": [8, 8, 8]}
    net = build("repan_face", scale=8, **options)
    path = save_model(net, tmp_path / "f.safetensors", arch="repan_face", scale=8,
                      purpose="face", options=options)  # fmt: skip
    kw = dict(data=LFW_ZIP, pairs=small_lfw, workers=1, progress=False, log=None)
    rows = run_faces_eval([str(path)], 8, backends=["torch/fp32", "torch/bf16"], **kw)["results"]
    assert [r["model"] for r in rows] == ["f", "f[torch/bf16]"]
    fp32, bf16 = rows
    assert bf16["id_distance"] == pytest.approx(fp32["id_distance"], abs=0.05)
    assert bf16["psnr"] == pytest.approx(fp32["psnr"], abs=0.5) and bf16["ms_per_face"] > 0
    with pytest.raises(Exception, match="backend"):
        run_faces_eval([str(path)], 8, backends=["nosuch/fp32"], **kw)
