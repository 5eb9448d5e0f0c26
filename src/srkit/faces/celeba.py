"""CelebA-style face-SR preprocessing (PFSRNet / FSRNet convention) and the 5-point landmarks.

PFSRNet (Kim et al., BMVC 2019) prepares aligned CelebA (178x218) as: centre crop 178x178,
resize to 128x128 (the HR), then *progressive* 2x downsampling 128 -> 64 -> 32 -> 16 (the LR
pyramid the progressive network is supervised with), each step torchvision's ``Resize``, i.e.
Pillow bilinear with antialiasing. ``method="bicubic"`` uses MATLAB's bicubic instead.

``list_landmarks_align_celeba.csv`` (or the official ``.txt``) gives 5 points per image: left
eye, right eye, nose, left and right mouth corner (image left/right), i.e. this package's
``eyes_nose_mouth`` order, so they align directly to the ``sphereface``/``arcface`` templates.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from srkit.image.resize import imresize_array

__all__ = ["celeba_crop_landmarks", "celeba_preprocess", "read_celeba_landmarks"]

CROP = 178


def read_celeba_landmarks(path: str | Path) -> dict[str, np.ndarray]:
    """``image_id -> (5, 2)`` float array from the CSV (Kaggle) or TXT (official) landmark file."""
    text = Path(path).read_text().splitlines()
    out: dict[str, np.ndarray] = {}
    if text and text[0].startswith("image_id"):
        for row in csv.DictReader(text):
            vals = [float(v) for k, v in row.items() if k != "image_id"]
            out[row["image_id"]] = np.array(vals, dtype=np.float64).reshape(5, 2)
        return out
    # official: count line, header line, then "name x1 y1 ... x5 y5"
    for line in text[2:]:
        f = line.split()
        if len(f) == 11:
            out[f[0]] = np.array([float(v) for v in f[1:]], dtype=np.float64).reshape(5, 2)
    if not out:
        raise ValueError(f"{path}: no CelebA landmarks found")
    return out


def _crop_box(h: int, w: int, size: int = CROP) -> tuple[int, int]:
    if h < size or w < size:
        raise ValueError(f"CelebA preprocessing needs at least {size}x{size}, got {w}x{h}")
    # torchvision CenterCrop: top = round((h - size) / 2)
    return int(round((h - size) / 2.0)), int(round((w - size) / 2.0))


def celeba_crop_landmarks(landmarks: np.ndarray, shape: tuple[int, int], size: int = 128):
    """Landmarks of the original image -> coordinates in the ``size`` HR (pixel centres)."""
    top, left = _crop_box(*shape)
    s = size / CROP
    pts = np.asarray(landmarks, dtype=np.float64) - [left, top]
    return (pts + 0.5) * s - 0.5


def _resize(img: np.ndarray, size: int, method: str) -> np.ndarray:
    if method == "pil_bilinear":
        from PIL import Image

        return np.array(Image.fromarray(img).resize((size, size), Image.BILINEAR))
    if method == "bicubic":
        return imresize_array(img, size=(size, size))
    raise ValueError(f"unknown resize method {method!r}: 'pil_bilinear' or 'bicubic'")


def celeba_preprocess(
    image: np.ndarray, hr_size: int = 128, levels: int = 3, method: str = "pil_bilinear"
) -> dict[int, np.ndarray]:
    """uint8 ``(218, 178, 3)`` -> ``{128: HR, 64: ..., 32: ..., 16: LR}`` (uint8, progressive)."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image, got {img.dtype} {img.shape}")
    top, left = _crop_box(*img.shape[:2])
    crop = np.ascontiguousarray(img[top : top + CROP, left : left + CROP])
    out = {hr_size: _resize(crop, hr_size, method)}
    cur, size = out[hr_size], hr_size
    for _ in range(levels):
        size //= 2
        cur = _resize(cur, size, method)
        out[size] = cur
    return out
