"""Where srkit.faces finds its data, its model files and its cache."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from srkit.common.files import cache_dir
from srkit.data.builtin import data_dir

__all__ = ["MissingModelError", "cache_dir", "data_dir", "model_file", "models_dir"]


class MissingModelError(FileNotFoundError):
    """A model file of ``face-recognition-models`` (or dlib itself) is not installed."""


def models_dir() -> Path:
    """The ``models/`` folder of the installed ``face-recognition-models`` package.

    Located with ``importlib.util.find_spec`` without importing it (its ``__init__`` needs
    ``pkg_resources``). ``$SRKIT_FACE_MODELS`` overrides it.
    """
    env = os.environ.get("SRKIT_FACE_MODELS")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise MissingModelError(
            "face-recognition-models is not installed: pip install 'srkit[faces]' "
            "(dlib-bin + face-recognition-models), or set SRKIT_FACE_MODELS to a folder "
            "holding dlib's .dat files"
        )
    return Path(spec.origin).parent / "models"


def model_file(name: str) -> Path:
    """Path of one of dlib's model files (``shape_predictor_5_face_landmarks.dat``, ...)."""
    path = models_dir() / name
    if not path.is_file():
        raise MissingModelError(f"model file {name} not found in {path.parent}")
    return path
