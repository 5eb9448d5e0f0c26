"""Face super-resolution evaluation: detection, alignment, identity embeddings, LFW protocol.

Submodules (imported on demand, dlib only where detection needs it):

* :mod:`srkit.faces.dlib_resnet` - dlib's face-recognition ResNet in PyTorch (no dlib needed);
* :mod:`srkit.faces.align` - cp2tform 'similarity' fit, templates, batched warp and inverse warp;
* :mod:`srkit.faces.detect` - dlib HOG detector and 5/68-point landmarks;
* :mod:`srkit.faces.embed` - the pluggable embedder interface (dlib ResNet, ONNX file);
* :mod:`srkit.faces.lfw` / :mod:`srkit.faces.celeba` - face data sets;
* :mod:`srkit.faces.evaluate` - the ``srkit faces eval`` protocol and its on-disk cache.
"""

from __future__ import annotations
