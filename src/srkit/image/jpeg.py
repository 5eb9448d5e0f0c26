"""The JPEG quality a file was saved at, read from its quantization tables.

Encoders built on the IJG library (libjpeg, Pillow, OpenCV, most cameras' and web tools' software)
scale the standard luminance table of the JPEG specification (Annex K) by the quality setting
``q`` in 1..100: ``scale = 5000 / q`` below 50, else ``200 - 2 q``; each entry is
``floor((base * scale + 50) / 100)`` clipped to 1..255. :func:`ijg_quality` inverts that: the
quality whose scaled table equals the file's exactly, or ``None`` for a table of another
encoder. A learned degradation (``task: degradation``) uses it to give its generated LR the JPEG
of the real LR set (:func:`quality_range`), and trains through :func:`soft_jpeg`, a
differentiable model of the same encoder (Shin and Song, "JPEG-resistant adversarial images",
2017: the rounding of the quantized DCT coefficients replaced by ``round(x) + (x - round(x))^3``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# Annex K.1 luminance table, in natural (row-major) order, as Pillow reports it.
IJG_LUMINANCE = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.int64,
)  # fmt: skip
# Annex K.2 chrominance table.
IJG_CHROMINANCE = np.full(64, 99, dtype=np.int64)
IJG_CHROMINANCE[[0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 24, 25]] = [
    17, 18, 24, 47, 18, 21, 26, 66, 24, 26, 56, 47, 66,
]  # fmt: skip


def ijg_table(quality: int, chroma: bool = False) -> np.ndarray:
    """The luminance (or ``chroma``) quantization table an IJG encoder writes at ``quality``
    (1..100), 64 entries in natural order."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality {quality}: must be in 1..100")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    base = IJG_CHROMINANCE if chroma else IJG_LUMINANCE
    return np.clip((base * scale + 50) // 100, 1, 255)


_TABLES = {q: ijg_table(q) for q in range(1, 101)}


def ijg_quality(table: Sequence[int]) -> int | None:
    """The IJG quality whose luminance table is ``table`` (64 entries, natural order), or
    ``None`` when no quality gives exactly this table."""
    values = np.asarray(table, dtype=np.int64)
    if values.shape != (64,):
        return None
    for quality, candidate in _TABLES.items():
        if np.array_equal(candidate, values):
            return quality
    return None


def jpeg_quality(data: bytes) -> int | None:
    """The IJG quality of the JPEG file ``data``; ``None`` for another format or encoder."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                return None
            tables = getattr(image, "quantization", None) or {}
            return ijg_quality(tables[0]) if 0 in tables else None
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def quality_range(files: Iterable[bytes]) -> tuple[int, int] | None:
    """``(lowest, highest)`` IJG quality over JPEG files, or ``None`` unless every file is a
    JPEG of an IJG encoder (a set of PNGs, or of mixed origin, has no one JPEG to imitate)."""
    qualities = []
    for data in files:
        quality = jpeg_quality(data)
        if quality is None:
            return None
        qualities.append(quality)
    return (min(qualities), max(qualities)) if qualities else None


# --- a differentiable model of the encoder -----------------------------------------------------


def _dct_matrix(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    k = torch.arange(8, dtype=torch.float64)
    m = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m.to(dtype=dtype, device=device)  # orthonormal: coefficients = M @ block @ M.T


def _soft_round(x: torch.Tensor) -> torch.Tensor:
    rounded = torch.round(x)
    return rounded + (x - rounded) ** 3


def _code_plane(plane: torch.Tensor, tables: torch.Tensor, dct: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` level-shifted samples (H, W multiples of 8) through 8 x 8 DCT, soft
    quantization by ``tables`` ``(N, 8, 8)`` and the inverse DCT."""
    n, h, w = plane.shape
    blocks = plane.reshape(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    coeff = dct @ blocks @ dct.T
    q = tables[:, None, None]
    coeff = _soft_round(coeff / q) * q
    blocks = dct.T @ coeff @ dct
    return blocks.permute(0, 1, 3, 2, 4).reshape(n, h, w)


def soft_jpeg(x: torch.Tensor, qualities: Sequence[int]) -> torch.Tensor:
    """RGB ``(N, 3, H, W)`` in [0, 1] through a differentiable baseline JPEG: JFIF YCbCr, 4:2:0
    chroma (2 x 2 mean), 8 x 8 DCT quantized by the IJG tables of ``qualities[i]`` with a
    cubic soft rounding, then decoded (chroma upsampled bilinearly). Close to a real encode and
    decode (not bit-exact: libjpeg rounds integers and upsamples chroma its own way); meant for
    gradients, with the real round trip in the forward pass (see
    :func:`srkit.train.tasks.degradation.apply_jpeg`)."""
    n, c, h, w = x.shape
    if c != 3:
        raise ValueError(f"soft_jpeg: RGB input needed, got {c} channels")
    if len(qualities) != n:
        raise ValueError(f"{len(qualities)} JPEG qualities for {n} images")
    ph, pw = (-h) % 16, (-w) % 16
    padded = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
    rgb = padded * 255.0
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b - 128.0
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)
    kw = {"dtype": x.dtype, "device": x.device}
    dct = _dct_matrix(**kw)
    luma_t = torch.stack([torch.from_numpy(ijg_table(int(q))) for q in qualities]).to(**kw)
    chroma_t = torch.stack([torch.from_numpy(ijg_table(int(q), True)) for q in qualities]).to(**kw)
    y = _code_plane(y, luma_t.view(n, 8, 8), dct) + 128.0
    half_n, hh, hw = n, chroma.shape[-2], chroma.shape[-1]
    coded = _code_plane(chroma.reshape(half_n * 2, hh, hw), chroma_t.view(n, 1, 8, 8).expand(
        n, 2, 8, 8).reshape(n * 2, 8, 8), dct).reshape(n, 2, hh, hw)  # fmt: skip
    cb, cr = F.interpolate(coded, scale_factor=2, mode="bilinear", align_corners=False).unbind(1)
    out = torch.stack(
        [y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1
    ) / 255.0  # fmt: skip
    return out[..., :h, :w]
