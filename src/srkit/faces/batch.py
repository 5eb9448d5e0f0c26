"""``srkit faces align``: aligned face crops for every image of a folder or zip."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from srkit.data.sources import open_source
from srkit.faces.align import align, get_template, landmarks68_to_5
from srkit.faces.detect import FaceDetector, FaceNotFoundError
from srkit.image.io import ImageReadError, write_image
from srkit.image.resize import quantize_uint8

__all__ = ["AlignReport", "align_images"]


@dataclass
class AlignReport:
    written: list[Path] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)  # written from the fallback box
    failed: dict[str, str] = field(default_factory=dict)  # name -> reason


def align_images(
    source: str | Path,
    out_dir: str | Path,
    template: str = "facesr128",
    size: tuple[int, int] | None = None,
    fallback_box: tuple[int, int, int, int] | None = None,
    upsample: int = 1,
    ext: str = ".png",
    on_image: Callable[[int], None] | None = None,
) -> AlignReport:
    """Detect, landmark and align each image of ``source``; write crops under ``out_dir``.

    The template decides the landmark model: dlib's 5 points for ``facesr128``/``dlib150``, the
    68-point model reduced to eye centres, nose tip and mouth corners for ``sphereface``/
    ``arcface``. Sub-folders of the source are kept; the extension becomes ``ext``.
    """
    tmpl = get_template(template)
    points = 5 if tmpl.landmarks == "dlib5" else 68
    detector = FaceDetector(points, upsample, select="largest")
    src = open_source(source, recursive=True)
    out = Path(out_dir)
    report = AlignReport()
    for name in src.names:
        try:
            img = src.read(name).to_rgb8()
            det = detector(img, src.label(name), fallback_box=fallback_box)
        except (ImageReadError, FaceNotFoundError) as e:
            report.failed[name] = str(e)
            if on_image:
                on_image(1)
            continue
        lm = det.landmarks
        if points == 68:
            lm = landmarks68_to_5(lm, "eyes_nose_mouth")
        x = torch.from_numpy(img).permute(2, 0, 1)[None].double()
        crop, _ = align(x, lm, tmpl, size=size)
        pixels = quantize_uint8(crop[0]).permute(1, 2, 0)
        target = out / PurePosixPath(name).with_suffix(ext)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_image(target, np.ascontiguousarray(pixels.numpy()))
        report.written.append(target)
        if not det.detected:
            report.fallback.append(name)
        if on_image:
            on_image(1)
    return report
