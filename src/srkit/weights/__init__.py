"""Weights: srkit's own format (safetensors + JSON manifest) and the authors' checkpoints.

``load(path)`` returns a ready ``SRModel`` (RGB in [0, 1]) for an srkit file, an official
``.pth``/``.pt`` (IMDN, RLFN/RLFN-S, A2N, CARN-M, EDSR, RRDBNet/ESRGAN; architecture detected
from key names and shapes) or LapSRN's MatConvNet ``.mat``. ``save_model`` writes srkit's format.
"""

from __future__ import annotations

from srkit.weights.errors import WeightsError
from srkit.weights.loader import load, load_network
from srkit.weights.native import PURPOSES, read_manifest, save_model

__all__ = ["PURPOSES", "WeightsError", "load", "load_network", "read_manifest", "save_model"]
