"""dlib detection/landmark wrappers, the face-SR crop vs dlib's chip, LFW read from its zip."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch

from srkit.faces.lfw import LFW, default_lfw_zip, image_key, pair_keys, read_pairs, read_people
from srkit.faces.paths import MissingModelError
from srkit.image.io import ImageReadError

LFW_ZIP = default_lfw_zip()
needs_lfw = pytest.mark.skipif(not LFW_ZIP.is_file(), reason=f"LFW zip absent: {LFW_ZIP}")


@pytest.fixture(scope="module")
def detector():
    pytest.importorskip("dlib", reason="dlib (pip install dlib-bin) is not installed")
    from srkit.faces.detect import FaceDetector

    try:
        return FaceDetector(points=5, select="center")
    except MissingModelError as e:
        pytest.skip(f"dlib model files absent: {e}")


@pytest.fixture(scope="module")
def lfw():
    if not LFW_ZIP.is_file():
        pytest.skip(f"LFW zip absent: {LFW_ZIP} (set SRKIT_DATA)")
    return LFW(LFW_ZIP)


def test_lfw_zip_read_in_place(lfw):
    assert len(lfw.keys) == 13233
    img = lfw.read(image_key("Aaron_Peirsol", 1))
    assert img.shape == (250, 250, 3) and img.dtype == np.uint8 and img.std() > 20
    with pytest.raises(KeyError, match="not in"):
        lfw.read(image_key("Nobody_Here", 1))


@needs_lfw
def test_pairs_and_people_lists():
    root = LFW_ZIP.parent
    pairs = read_pairs(root / "pairs.txt")
    assert len(pairs) == 6000 and {p.fold for p in pairs} == set(range(10))
    assert sum(p.same for p in pairs) == 3000
    assert pairs[0].first == "Abel_Pacheco/Abel_Pacheco_0001.jpg" and pairs[0].same
    assert pairs[300].fold == 0 and not pairs[300].same and pairs[600].fold == 1
    dev = read_pairs(root / "pairsDevTest.txt")
    assert len(dev) == 1000 and len(pair_keys(dev)) == 1549
    people = read_people(root / "people.txt")
    assert {f for _, _, f in people} == set(range(10))
    assert len(read_people(root / "peopleDevTest.txt")) == 1711


def test_pairs_errors(tmp_path):
    bad = tmp_path / "pairs.txt"
    bad.write_text("1\nA\t1\t2\nB\t1\n")
    with pytest.raises(ValueError, match=r"pairs.txt:3"):
        read_pairs(bad)
    bad.write_text("2\nA\t1\t2\n")
    with pytest.raises(ValueError, match="announces"):
        read_pairs(bad)


def test_detect_and_landmarks(detector, lfw):
    from srkit.faces.detect import Box

    img = lfw.read(image_key("Aaron_Peirsol", 1))
    det = detector(img, "Aaron_Peirsol_0001")
    assert det.detected and det.landmarks.shape == (5, 2)
    lm = det.landmarks
    # dlib's 5 points: subject's left eye (image right) first, nose below the eyes
    assert lm[0, 0] > lm[1, 0] > lm[3, 0] > lm[2, 0]
    assert lm[4, 1] > lm[:4, 1].max()
    box = det.box
    assert box.left < lm[:, 0].min() and lm[:, 0].max() < box.right
    assert isinstance(box, Box) and box.area > 50 * 50


def test_no_face_error_and_fallback(detector):
    from srkit.faces.detect import FaceNotFoundError

    flat = np.full((250, 250, 3), 128, np.uint8)
    with pytest.raises(FaceNotFoundError, match="flat.png: no face found") as info:
        detector(flat, "flat.png")
    # the error survives a process boundary (worker pools)
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, FaceNotFoundError) and again.name == "flat.png"
    det = detector(flat, "flat.png", fallback_box=(67, 80, 175, 187))
    assert not det.detected and det.landmarks.shape == (5, 2)
    assert det.landmarks[:, 0].min() >= 67 and det.landmarks[:, 0].max() <= 175


def test_bad_images(detector):
    with pytest.raises(ImageReadError, match="not a uint8 RGB image"):
        detector(np.zeros((50, 50), np.uint8), "gray")
    with pytest.raises(ImageReadError, match="too small"):
        detector(np.zeros((4, 4, 3), np.uint8), "tiny")
    from srkit.image.io import read_rgb

    with pytest.raises(ImageReadError):
        read_rgb(io.BytesIO(b"not an image at all"), name="junk.jpg")


def test_facesr_crop_is_dlibs_chip(detector, lfw):
    dlib = pytest.importorskip("dlib", reason="dlib (pip install dlib-bin) is not installed")
    from srkit.faces.align import align

    img = lfw.read(image_key("Abdullah_Gul", 1))
    det = detector(img)
    rect = dlib.rectangle(det.box.left, det.box.top, det.box.right, det.box.bottom)
    shape = detector._predictor(img, rect)
    ref = dlib.get_face_chip(img, shape, 128, 0.25).astype(np.float64)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].double()
    crop, _ = align(x, det.landmarks, "facesr128")
    ours = crop[0].permute(1, 2, 0).numpy()
    # dlib truncates to uint8 (-0.5 on average); otherwise the same geometry and interpolation
    assert np.abs(np.floor(ours) - ref)[8:-8, 8:-8].mean() < 0.5
    assert np.abs(ours - ref)[8:-8, 8:-8].mean() < 1.0


@pytest.mark.slow
def test_align_folder(detector, tmp_path):
    from PIL import Image

    from srkit.faces.batch import align_images
    from srkit.faces.paths import data_dir
    from srkit.image.io import read_rgb

    celeba = data_dir() / "faces" / "celeba-align-32"
    if not celeba.is_dir():
        pytest.skip(f"CelebA samples absent: {celeba}")
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.jpg").write_bytes((celeba / "000005.jpg").read_bytes())
    Image.new("RGB", (100, 100), (50, 50, 50)).save(src / "blank.png")
    seen = []
    rep = align_images(src, tmp_path / "out", "sphereface", on_image=seen.append)
    assert len(seen) == 2 and list(rep.failed) == ["blank.png"]
    assert "no face found" in rep.failed["blank.png"]
    (written,) = rep.written
    assert written == tmp_path / "out" / "sub" / "a.png"
    assert read_rgb(written).shape == (112, 96, 3)
    rep = align_images(src, tmp_path / "out2", "facesr128", fallback_box=(10, 10, 90, 90))
    assert len(rep.written) == 2 and rep.fallback == ["blank.png"]
