"""How the LR face is made from the HR crop (``--degradation FILE.yaml``).

The default is the protocol's: MATLAB bicubic (``srkit.image.resize.imresize``) of the uint8 HR,
rounded to uint8. A YAML file can change the recipe, which moves identity scores a lot:

.. code-block:: yaml

    resize: bicubic        # bicubic (MATLAB), bilinear, opencv_bicubic, pil_bicubic
    blur_sigma: 0.0        # Gaussian blur of the HR before resizing (pixels), 0 = none
    noise_sigma: 0.0       # Gaussian noise added to the LR (0..255 units), 0 = none
    jpeg_quality: null     # JPEG-compress the LR at this quality (Pillow), null = lossless
    seed: 0                # noise seed (per image: seed + image index)
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from srkit.image.resize import imresize_uint8

__all__ = ["Degradation", "load_degradation"]

RESIZES = ("bicubic", "bilinear", "opencv_bicubic", "pil_bicubic")


@dataclass(frozen=True)
class Degradation:
    resize: str = "bicubic"
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    jpeg_quality: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resize not in RESIZES:
            raise ValueError(f"degradation resize {self.resize!r}: expected one of {RESIZES}")
        if self.blur_sigma < 0 or self.noise_sigma < 0:
            raise ValueError("blur_sigma and noise_sigma must be >= 0")
        if self.jpeg_quality is not None and not 1 <= int(self.jpeg_quality) <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")

    @property
    def is_default(self) -> bool:
        return self == Degradation()

    def describe(self) -> str:
        parts = [f"{self.resize}"]
        if self.blur_sigma:
            parts.append(f"blur{self.blur_sigma:g}")
        if self.noise_sigma:
            parts.append(f"noise{self.noise_sigma:g}")
        if self.jpeg_quality is not None:
            parts.append(f"jpeg{self.jpeg_quality}")
        return "+".join(parts)

    def as_dict(self) -> dict:
        return asdict(self)

    def __call__(self, hr: torch.Tensor, scale: int, first_index: int = 0) -> torch.Tensor:
        """uint8 ``(N, 3, H, W)`` HR -> uint8 ``(N, 3, H/scale, W/scale)`` LR."""
        if hr.dtype != torch.uint8:
            raise TypeError(f"degradation expects uint8 HR, got {hr.dtype}")
        x = hr
        if self.blur_sigma > 0:
            x = _blur(x.double(), self.blur_sigma).round().clamp(0, 255).to(torch.uint8)
        h, w = x.shape[-2:]
        lr = imresize_uint8(x, size=(h // scale, w // scale), kernel=self.resize)
        if self.noise_sigma > 0:
            out = []
            for i in range(lr.shape[0]):
                g = torch.Generator().manual_seed(self.seed + first_index + i)
                noise = torch.randn(lr.shape[1:], generator=g, dtype=torch.float64)
                out.append((lr[i].double() + self.noise_sigma * noise).round().clamp(0, 255))
            lr = torch.stack(out).to(torch.uint8)
        if self.jpeg_quality is not None:
            lr = _jpeg(lr, int(self.jpeg_quality))
        return lr


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(np.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _jpeg(lr: torch.Tensor, quality: int) -> torch.Tensor:
    from PIL import Image

    out = []
    for img in lr.permute(0, 2, 3, 1).numpy():
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        out.append(np.asarray(Image.open(buf).convert("RGB")))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def load_degradation(path: str | Path | None) -> Degradation:
    """Read a degradation YAML (``None`` -> the protocol's MATLAB bicubic)."""
    if path is None:
        return Degradation()
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a degradation file is a mapping of options")
    known = {f.name for f in fields(Degradation)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{path}: unknown degradation options {sorted(unknown)}; known: {known}")
    return Degradation(**data)
