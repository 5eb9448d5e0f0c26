"""dlib's face-recognition ResNet ported to PyTorch: parser, parity with dlib, gradients."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch

from srkit.faces.dlib_resnet import DlibFormatError, load_dlib_resnet, parse_dlib_resnet
from srkit.faces.paths import MissingModelError, data_dir, model_file

LFW_ZIP = data_dir() / "faces" / "lfw" / "lfw-deepfunneled.zip"
FACES = [
    "lfw-deepfunneled/Aaron_Peirsol/Aaron_Peirsol_0001.jpg",
    "lfw-deepfunneled/Aaron_Peirsol/Aaron_Peirsol_0002.jpg",
    "lfw-deepfunneled/Abdullah_Gul/Abdullah_Gul_0001.jpg",
    "lfw-deepfunneled/Serena_Williams/Serena_Williams_0001.jpg",
]


def _model_path(name: str):
    try:
        return model_file(name)
    except MissingModelError as e:
        pytest.skip(f"dlib model files absent: {e}")


@pytest.fixture(scope="module")
def net():
    return load_dlib_resnet(_model_path("dlib_face_recognition_resnet_model_v1.dat"))


def test_parse_structure():
    w = parse_dlib_resnet(_model_path("dlib_face_recognition_resnet_model_v1.dat"))
    assert w.input_size == (150, 150)
    assert w.distance_threshold == pytest.approx(0.6, abs=1e-6)
    np.testing.assert_allclose(w.mean_rgb, (122.782, 117.001, 104.298), atol=1e-3)
    kinds = [layer.kind for layer in w.layers]
    assert kinds.count("con") == 29 and kinds.count("add_prev") == 14
    assert kinds[-1] == "fc" and w.layers[-1].params["weight"].shape == (256, 128)


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(DlibFormatError, match="not a dlib network"):
        parse_dlib_resnet(b"\x01\x05hello")
    data = _model_path("dlib_face_recognition_resnet_model_v1.dat").read_bytes()
    with pytest.raises(DlibFormatError, match="end of file"):
        parse_dlib_resnet(data[: len(data) // 2])
    other = _model_path("shape_predictor_5_face_landmarks.dat").read_bytes()
    with pytest.raises(DlibFormatError):
        parse_dlib_resnet(other)


def test_shape_and_input_checks(net):
    with pytest.raises(ValueError, match="150x150"):
        net(torch.zeros(1, 3, 128, 128))
    assert net(torch.rand(3, 3, 150, 150)).shape == (3, 128)


def test_gradients_flow(net):
    x = torch.rand(2, 3, 150, 150, requires_grad=True)
    y = net(x)
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # the parameters are frozen by default, the input gradient is not
    assert all(not p.requires_grad for p in net.parameters())


def test_matches_dlib_on_real_faces(net):
    dlib = pytest.importorskip("dlib", reason="dlib (pip install dlib-bin) is not installed")
    if not LFW_ZIP.is_file():
        pytest.skip(f"LFW zip absent: {LFW_ZIP} (set SRKIT_DATA)")
    from PIL import Image

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(_model_path("shape_predictor_5_face_landmarks.dat")))
    fr = dlib.face_recognition_model_v1(
        str(_model_path("dlib_face_recognition_resnet_model_v1.dat"))
    )
    chips, ref = [], []
    with zipfile.ZipFile(LFW_ZIP) as z:
        for name in FACES:
            img = np.asarray(Image.open(io.BytesIO(z.read(name))).convert("RGB"))
            dets = det(img, 1)
            assert dets, name
            chip = dlib.get_face_chip(img, sp(img, dets[0]), 150, 0.25)
            chips.append(chip)
            ref.append(np.asarray(fr.compute_face_descriptor(chip)))
    x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        ours = net(x).numpy()
    ref = np.stack(ref)
    assert np.abs(ours - ref).max() < 1e-4
    # and it is an identity metric: the same person is closer than different people
    d = np.linalg.norm(ours[:, None] - ours[None], axis=-1)
    assert d[0, 1] < 0.6 < min(d[0, 2], d[0, 3], d[2, 3])
