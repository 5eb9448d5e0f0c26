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


def test_embedder_gradients_through_alignment(net):
    from srkit.faces.align import TEMPLATES
    from srkit.faces.embed import DlibEmbedder, get_embedder

    emb = DlibEmbedder()
    assert emb.threshold == 0.6 and emb.dim == 128 and emb.landmarks == "dlib5"
    crops = torch.rand(2, 3, 128, 128, requires_grad=True)
    lm = torch.from_numpy(TEMPLATES["facesr128"].points).expand(2, 5, 2)
    e = emb(crops, lm)
    assert e.shape == (2, 128)
    (e[0] - e[1]).norm().backward()
    assert crops.grad is not None and crops.grad.abs().sum() > 0
    # the fast (TorchScript) path used for evaluation gives the same values
    fast = get_embedder("dlib", fast=True)
    with torch.no_grad():
        torch.testing.assert_close(fast(crops, lm), emb(crops, lm), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="unknown embedder"):
        get_embedder("facenet")


def test_onnx_embedder(tmp_path, monkeypatch):
    import sys

    from srkit.faces.embed import OnnxEmbedder

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        OnnxEmbedder(tmp_path / "arcface.onnx")
    monkeypatch.delitem(sys.modules, "onnxruntime")
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (optional)")
    onnx = pytest.importorskip("onnx", reason="onnx not installed (needed to build a test model)")
    from onnx import TensorProto, helper, numpy_helper

    from srkit.faces.align import TEMPLATES

    w = np.random.default_rng(0).normal(size=(3 * 112 * 112, 16)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
        "toy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 112, 112])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 16])],
        [numpy_helper.from_array(w, "w")],
    )
    path = tmp_path / "toy.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, path)
    emb = OnnxEmbedder(path)
    assert emb.dim == 16 and emb.metric == "cosine" and emb.landmarks == "eyes_nose_mouth"
    img = torch.rand(2, 3, 112, 112)
    lm = torch.from_numpy(TEMPLATES["arcface"].points).expand(2, 5, 2)
    out = emb(img, lm)
    ref = ((img.numpy() * 255 - 127.5) / 127.5).reshape(2, -1) @ w
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-3, atol=1e-2)
