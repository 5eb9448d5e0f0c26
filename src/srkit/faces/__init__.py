"""Face super-resolution evaluation: detection, alignment, identity embeddings, LFW protocol.

Submodules (imported on demand, dlib only where detection needs it):

* :mod:`srkit.faces.dlib_resnet` - dlib's face-recognition ResNet in PyTorch (no dlib needed);
* :mod:`srkit.faces.align` - cp2tform 'similarity' fit, templates, batched warp and inverse warp;
* :mod:`srkit.faces.detect` - dlib HOG detector and 5/68-point landmarks;
* :mod:`srkit.faces.embed` - the pluggable embedder interface (dlib ResNet, ONNX file);
* :mod:`srkit.faces.lfw` / :mod:`srkit.faces.celeba` - face data sets;
* :mod:`srkit.faces.facesets` - the data sets ``srkit faces eval`` scores (LFW pairs, folders);
* :mod:`srkit.faces.evaluate` - the ``srkit faces eval`` protocol: the face alignment and
  identity plugins of the evaluation loop (:mod:`srkit.bench.engine`).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DlibResNet": "srkit.faces.dlib_resnet",
    "load_dlib_resnet": "srkit.faces.dlib_resnet",
    "parse_dlib_resnet": "srkit.faces.dlib_resnet",
    "TEMPLATES": "srkit.faces.align",
    "align": "srkit.faces.align",
    "face_chip": "srkit.faces.align",
    "fit_similarity": "srkit.faces.align",
    "paste_back": "srkit.faces.align",
    "transform_points": "srkit.faces.align",
    "warp_affine": "srkit.faces.align",
    "FaceDetector": "srkit.faces.detect",
    "FaceNotFoundError": "srkit.faces.detect",
    "DlibEmbedder": "srkit.faces.embed",
    "Embedder": "srkit.faces.embed",
    "OnnxEmbedder": "srkit.faces.embed",
    "get_embedder": "srkit.faces.embed",
    "LFW": "srkit.faces.lfw",
    "read_pairs": "srkit.faces.lfw",
    "FaceDegradation": "srkit.faces.degrade",
    "load_degradation": "srkit.faces.degrade",
    "run_faces_eval": "srkit.faces.evaluate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'srkit.faces' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
