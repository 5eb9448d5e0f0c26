"""A visual comparison: bicubic | model(s) | HR, with a zoomed crop and the scores of each.

``compare(hr, model, scale, out_dir)`` degrades ``hr`` exactly as ``srkit bench`` does (mod-crop,
MATLAB bicubic downscale rounded to uint8), upscales the LR with MATLAB bicubic and with the
model, and scores both with the benchmark's Y-PSNR (``scale`` pixels of border removed), so the
numbers on the picture are the numbers ``srkit bench`` reports for that image. It writes the
model's output and a side-by-side panel; the zoomed region is the most detailed one of the HR
(highest gradient energy) unless ``crop`` is given. ``model`` may be several models (a PSNR model
beside a perceptual one), and ``metrics`` adds the ``srkit bench --metrics`` scores (LPIPS,
MS-SSIM, NIQE) under each column.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from srkit.bench.protocol import matlab_bicubic_lr, super_resolve_uint8
from srkit.image.color import rgb_uint8_to_y
from srkit.image.io import read_rgb, write_image
from srkit.infer.upscaler import load_model
from srkit.metrics import mod_crop, psnr
from srkit.metrics.select import ImageMetric, parse_metrics
from srkit.models import SRModel, resolve_model

#: ``(x, y, side)`` of a square region in HR pixels.
Crop = tuple[int, int, int]

_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)
_NOTE = (95, 95, 95)
_BOX = (230, 30, 30)


@dataclass(frozen=True)
class CompareColumn:
    """One upscaler of a comparison: its output file (None for bicubic) and its scores."""

    name: str
    path: Path | None
    psnr: float  # dB, Y channel, as srkit bench
    scores: dict[str, float] = field(default_factory=dict)  # the extra metrics, by name


@dataclass(frozen=True)
class CompareResult:
    """What ``compare`` wrote and measured (PSNR in dB, Y channel, as ``srkit bench``).

    ``sr_path``, ``model`` and ``psnr_model`` are the first model's; ``columns`` holds bicubic
    and every model, in panel order."""

    sr_path: Path
    compare_path: Path
    model: str
    scale: int
    psnr_bicubic: float
    psnr_model: float
    crop: Crop
    zoom: int
    height: int
    width: int
    columns: tuple[CompareColumn, ...] = ()


def _load_model(model: str | os.PathLike | SRModel | None, scale: int) -> SRModel:
    try:
        resolved = load_model(model, scale)
    except ValueError as error:
        if model is None:
            raise ValueError(f"{error}; pass a model (a weight file or bicubic)") from error
        raise
    if int(resolved.scale) != scale:
        raise ValueError(f"{resolved.name} is an x{resolved.scale} model; asked for x{scale}")
    return resolved


def _load_hr(image: str | os.PathLike | np.ndarray, name: str | None) -> tuple[np.ndarray, str]:
    """uint8 RGB ``(H, W, 3)`` and the stem of the output file names."""
    if isinstance(image, (str, os.PathLike)):
        return read_rgb(image), name or Path(image).stem
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W), (H, W, 1) or (H, W, 3) image, got {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array), name or "image"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


def default_crop_size(height: int, width: int) -> int:
    """A quarter of the short side, between 8 and 128 pixels (never more than the image)."""
    return min(height, width, max(8, min(128, min(height, width) // 4)))


def detail_crop(hr: np.ndarray, size: int | None = None, margin: int = 0) -> Crop:
    """The ``size`` x ``size`` square of ``hr`` (uint8 ``(H, W, 3)``) with the most detail.

    Detail is the sum of squared horizontal and vertical differences of the Y channel; the first
    maximum in raster order wins. The square keeps ``margin`` pixels from the edges where the
    image is large enough (the metric ignores the border, and a box there is hard to see).
    """
    height, width = hr.shape[:2]
    side = default_crop_size(height, width) if size is None else int(size)
    if not 1 <= side <= min(height, width):
        raise ValueError(f"crop side {side} does not fit a {width}x{height} image")
    rgb = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1).unsqueeze(0)
    y = rgb_uint8_to_y(rgb, rounded=False)[0, 0].numpy().astype(np.float64)
    energy = np.zeros_like(y)
    energy[:, :-1] += np.diff(y, axis=1) ** 2
    energy[:-1, :] += np.diff(y, axis=0) ** 2
    integral = np.zeros((height + 1, width + 1))
    integral[1:, 1:] = energy.cumsum(0).cumsum(1)
    s = side
    sums = integral[s:, s:] - integral[:-s, s:] - integral[s:, :-s] + integral[:-s, :-s]
    rows, cols = sums.shape  # candidate positions: 0..height - side, 0..width - side
    m_rows, m_cols = min(margin, (rows - 1) // 2), min(margin, (cols - 1) // 2)
    inner = sums[m_rows : rows - m_rows, m_cols : cols - m_cols]
    top, left = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return int(left) + m_cols, int(top) + m_rows, side


def check_crop(crop: Crop, height: int, width: int) -> Crop:
    x, y, side = (int(v) for v in crop)
    if side < 1 or x < 0 or y < 0 or x + side > width or y + side > height:
        raise ValueError(
            f"crop {side}x{side} at ({x}, {y}) is not inside the {width}x{height} "
            "(mod-cropped) image"
        )
    return x, y, side


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text``, cut with an ellipsis if wider than ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(_fit(draw, word, font, width))
    return lines


def _label_lines(draw, name: str, value: str, font, width: int) -> list[str]:
    """``name value`` on one line if it fits, else two lines."""
    one = f"{name} {value}".strip()
    if draw.textlength(one, font=font) <= width:
        return [one]
    return [_fit(draw, name, font, width), *_wrap(draw, value, font, width)]


def render_panel(
    columns: list[tuple[str, str, np.ndarray]],
    crop: Crop,
    zoom: int,
    note: str = "",
) -> Image.Image:
    """Columns of ``(name, value, image)`` (images uint8 ``(H, W, 3)``, one size): a label, the
    full image with ``crop`` outlined, the crop enlarged ``zoom`` times (nearest neighbour);
    ``note`` in small grey type underneath."""
    height, width = columns[0][2].shape[:2]
    if any(image.shape[:2] != (height, width) for _, _, image in columns):
        raise ValueError("all images of a comparison must have the same size")
    x, y, side = check_crop(crop, height, width)
    zoomed = side * zoom
    column = max(width, zoomed)
    font_size = min(36, max(13, column // 16))
    font, small = _font(font_size), _font(max(12, round(font_size * 0.8)))
    margin = font_size
    line = round(font_size * 1.3)
    stroke = max(2, round(min(height, width) / 128))
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = [_label_lines(scratch, name, value, font, column) for name, value, _ in columns]
    panel_width = len(columns) * column + (len(columns) + 1) * margin
    notes = _wrap(scratch, note, small, panel_width - 2 * margin) if note else []
    small_line = round(line * 0.8)
    label_height = max(len(lines) for lines in labels) * line
    image_top = margin + label_height + font_size // 2
    zoom_top = image_top + height + margin
    note_top = zoom_top + zoomed + margin
    panel_height = note_top + len(notes) * small_line + (margin if notes else 0)
    canvas = Image.new("RGB", (panel_width, panel_height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for i, ((_, _, image), lines) in enumerate(zip(columns, labels, strict=True)):
        left = margin + i * (column + margin)
        for j, text in enumerate(lines):
            draw.text(
                (left + column // 2, margin + j * line), text, fill=_TEXT, font=font, anchor="mt"
            )
        full = Image.fromarray(np.ascontiguousarray(image))
        image_left = left + (column - width) // 2
        canvas.paste(full, (image_left, image_top))
        box = (image_left + x, image_top + y)
        draw.rectangle(
            (
                box[0] - stroke,
                box[1] - stroke,
                box[0] + side - 1 + stroke,
                box[1] + side - 1 + stroke,
            ),
            outline=_BOX,
            width=stroke,
        )
        part = full.crop((x, y, x + side, y + side)).resize((zoomed, zoomed), Image.NEAREST)
        zoom_left = left + (column - zoomed) // 2
        canvas.paste(part, (zoom_left, zoom_top))
        draw.rectangle(
            (
                zoom_left - stroke,
                zoom_top - stroke,
                zoom_left + zoomed - 1 + stroke,
                zoom_top + zoomed - 1 + stroke,
            ),
            outline=_BOX,
            width=stroke,
        )
    for j, text in enumerate(notes):
        draw.text((margin, note_top + j * small_line), text, fill=_NOTE, font=small)
    return canvas


def _format_scores(psnr_db: float, scores: dict[str, float]) -> str:
    parts = [f"{psnr_db:.2f} dB"]
    parts += [
        f"{name.upper() if name == 'niqe' else name} {value:.3f}" for name, value in scores.items()
    ]
    return ", ".join(parts)


Models = str | os.PathLike | SRModel | None


def compare(
    image: str | os.PathLike | np.ndarray,
    model: Models | Sequence[Models],
    scale: int,
    out_dir: str | os.PathLike,
    crop: Crop | None = None,
    *,
    zoom: int | None = None,
    name: str | None = None,
    convention: str = "modern",
    metrics: str | Sequence[str] | Sequence[ImageMetric] = (),
) -> CompareResult:
    """Super-resolve the LR of HR ``image`` and write the results plus a comparison panel.

    ``image``: an HR file or uint8 array. ``model``: an ``SRModel``, a weight file, a model name,
    ``None`` for srkit's default model for ``scale``, or a list of those (one column each, e.g. a
    PSNR model and a perceptual one). ``crop``: ``(x, y, side)`` of the zoomed square in
    (mod-cropped) HR pixels; default: the most detailed region. ``zoom``: enlargement of the crop
    (default: to about the image's short side, 2-8x). ``name``: stem of the output files
    (default: the file's). ``metrics``: names of ``srkit bench --metrics`` (``lpips,niqe``...)
    shown beside the PSNR. Writes ``<stem>_x<scale>_<model>.png`` per model and
    ``<stem>_x<scale>_compare.png`` into ``out_dir``.
    """
    if scale < 2:
        raise ValueError(f"scale must be an integer >= 2, got {scale}")
    specs = list(model) if isinstance(model, (list, tuple)) else [model]
    if not specs:
        raise ValueError("compare needs at least one model")
    models = [_load_model(spec, scale) for spec in specs]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"each model of a comparison must be named differently, got {names}")
    chosen = [m for m in metrics if isinstance(m, ImageMetric)] or parse_metrics(metrics)
    bicubic = resolve_model("bicubic", scale)
    pixels, stem = _load_hr(image, name)
    hr = mod_crop(torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0), scale)
    height, width = int(hr.shape[-2]), int(hr.shape[-1])
    if min(height, width) < scale * 4:
        raise ValueError(f"{stem}: image {(height, width)} is too small for x{scale}")
    lr = matlab_bicubic_lr(hr, scale)
    outputs = []
    for upscaler in (bicubic, *models):
        sr = super_resolve_uint8(upscaler, lr)
        if sr.shape != hr.shape:
            raise ValueError(
                f"{upscaler.name} returned {tuple(sr.shape[-2:])} for an LR of "
                f"{tuple(lr.shape[-2:])} at x{scale}; expected {(height, width)}"
            )
        score = psnr(sr, hr, border=scale, convention=convention, channel="y").item()
        extra = {
            m.name: m.score(sr, hr, border=scale, convention=convention, channel="y")
            for m in chosen
        }
        outputs.append((upscaler.name, sr[0].permute(1, 2, 0).contiguous().numpy(), score, extra))
    hr_pixels = hr[0].permute(1, 2, 0).contiguous().numpy()

    if crop is None:
        box = detail_crop(hr_pixels, margin=max(scale, default_crop_size(height, width) // 8))
    else:
        box = check_crop(crop, height, width)
    if zoom is None:
        zoom = min(8, max(2, min(height, width) // box[2]))
    if zoom < 1:
        raise ValueError(f"zoom must be >= 1, got {zoom}")

    measured = f"PSNR on Y, {scale}-pixel border, {convention} convention"
    if chosen:
        measured += (
            "; " + ", ".join(m.name for m in chosen) + " on RGB (lower is better but MS-SSIM)"
        )
    note = (
        f"x{scale}: the LR is the MATLAB bicubic downscale of the HR (as srkit bench). "
        f"{measured}. Zoom: {box[2]}x{box[2]} at ({box[0]}, {box[1]}), {zoom}x nearest neighbour."
    )
    panel = render_panel(
        [(label, _format_scores(score, extra), image_) for label, image_, score, extra in outputs]
        + [("HR (ground truth)", "", hr_pixels)],
        box,
        zoom,
        note,
    )
    out = Path(out_dir)
    columns = [CompareColumn(outputs[0][0], None, outputs[0][2], outputs[0][3])]
    for label, image_, score, extra in outputs[1:]:
        path = write_image(out / f"{stem}_x{scale}_{_safe_name(label)}.png", image_)
        columns.append(CompareColumn(label, path, score, extra))
    compare_path = write_image(out / f"{stem}_x{scale}_compare.png", np.asarray(panel))
    first = columns[1]
    return CompareResult(
        sr_path=first.path,
        compare_path=compare_path,
        model=first.name,
        scale=scale,
        psnr_bicubic=columns[0].psnr,
        psnr_model=first.psnr,
        crop=box,
        zoom=zoom,
        height=height,
        width=width,
        columns=tuple(columns),
    )
