"""``srkit faces restore``: super-resolve whole photos with a face model on every face.

For each photo:

1. faces are found by dlib's HOG detector and, with ``detector="both"`` or ``"cnn"``, dlib's CNN
   (MMOD) detector of ``face-recognition-models``, which also finds small and turned faces; CNN
   boxes that overlap a HOG box (IoU > 0.3) are the same face. Faces under ``min_face`` pixels
   (box side, input pixels) are skipped and reported; ``only_center_face`` keeps the one nearest
   the centre;
2. each face's 5 landmarks (dlib) align it to the face model's template (``facesr128`` at the
   model's LR size, e.g. 32x32 for an x4 face model), the face model makes the 128x128 face;
   with ``fidelity`` set, the result is ``fidelity * pixel model + (1 - fidelity) * identity
   model`` (1: closest to the input's pixels, 0: the identity-trained face);
3. the background is the whole photo upscaled by the general model (tiled, :mod:`srkit.infer`)
   or bicubic; each face is pasted back through the inverse similarity with a feathered mask
   (and zero weight where its crop reached outside the photo).

``aligned=True`` takes already-aligned face crops (the ``facesr128`` template, any square size):
each is resized to the model's LR size if needed and super-resolved, no detection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from srkit.faces.align import align, fit_similarity, get_template, paste_back
from srkit.faces.detect import Box, FaceDetector, import_dlib
from srkit.faces.paths import model_file
from srkit.image.resize import imresize, quantize_uint8

__all__ = ["FaceRestorer", "Restored", "merge_boxes"]

DETECTORS = ("hog", "cnn", "both")
TEMPLATE = "facesr128"


@dataclass
class Restored:
    """One restored photo and what happened to its faces."""

    image: np.ndarray  # uint8 (H * scale, W * scale, 3)
    faces: list[Box] = field(default_factory=list)  # restored (input pixels)
    skipped: list[tuple[Box, str]] = field(default_factory=list)  # found but not restored


def _iou(a: Box, b: Box) -> float:
    left, top = max(a.left, b.left), max(a.top, b.top)
    right, bottom = min(a.right, b.right), min(a.bottom, b.bottom)
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def merge_boxes(first: list[Box], second: list[Box], iou: float = 0.3) -> list[Box]:
    """``first`` plus the boxes of ``second`` that overlap none of them by more than ``iou``."""
    merged = list(first)
    for box in second:
        if all(_iou(box, other) <= iou for other in merged):
            merged.append(box)
    return merged


class FaceRestorer:
    """Photo in, photo x ``scale`` out, faces by the face model (see the module docstring).

    ``face_model`` / ``pixel_model`` / ``background`` are :class:`srkit.models.SRModel` s or
    ``--model`` names (``background`` may also be ``bicubic``). Face models take aligned
    ``128 / s`` crops and return 128x128 faces.
    """

    def __init__(
        self,
        face_model,
        *,
        scale: int = 4,
        background="bicubic",
        pixel_model=None,
        fidelity: float | None = None,
        detector: str = "both",
        only_center_face: bool = False,
        min_face: int = 16,
        upsample: int = 1,
        feather: int = 12,
        tile: int | None = None,
    ) -> None:
        from srkit.infer.upscaler import Upscaler
        from srkit.models import resolve_model

        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
        if fidelity is not None and not 0.0 <= fidelity <= 1.0:
            raise ValueError(f"fidelity must be in [0, 1], got {fidelity}")
        if fidelity is not None and pixel_model is None:
            raise ValueError("fidelity blends with a pixel model: give one")
        self.face = resolve_model(face_model, None) if isinstance(face_model, str) else face_model
        self.pixel = None
        if fidelity is not None:
            self.pixel = (
                resolve_model(pixel_model, None) if isinstance(pixel_model, str) else pixel_model
            )
            if int(self.pixel.scale) != int(self.face.scale):
                raise ValueError(
                    f"the pixel model is x{self.pixel.scale}, the face model x{self.face.scale}"
                )
        self.face_scale = int(self.face.scale)
        size = get_template(TEMPLATE).size[0]
        if size % self.face_scale:
            raise ValueError(f"face model x{self.face_scale} does not divide {size}")
        self.lr_size = size // self.face_scale
        self.scale = scale
        self.fidelity = fidelity
        self.detector = detector
        self.only_center_face = only_center_face
        self.min_face = min_face
        self.upsample = upsample
        self.feather = feather
        self.background = Upscaler(background, scale=scale, tile=tile, backend="torch") \
            if scale > 1 else None  # fmt: skip
        self._hog = None
        self._cnn = None

    # ------------------------------------------------------------------ detection
    def _hog_detector(self) -> FaceDetector:
        if self._hog is None:
            self._hog = FaceDetector(5, self.upsample, select="largest")
        return self._hog

    def detect(self, image: np.ndarray) -> list[Box]:
        """Faces of a uint8 RGB photo, largest first (centre-most first with only_center_face)."""
        boxes: list[Box] = []
        if self.detector in ("hog", "both"):
            boxes = self._hog_detector().detect(image)
        if self.detector in ("cnn", "both"):
            if self._cnn is None:
                dlib = import_dlib()
                self._cnn = dlib.cnn_face_detection_model_v1(
                    str(model_file("mmod_human_face_detector.dat"))
                )
            found = [
                Box(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence)
                for d in self._cnn(np.ascontiguousarray(image), self.upsample)
            ]
            boxes = merge_boxes(boxes, found)
        if self.only_center_face and boxes:
            cy, cx = (image.shape[0] - 1) / 2, (image.shape[1] - 1) / 2
            boxes = [min(boxes, key=lambda b: (b.center[0] - cx) ** 2 + (b.center[1] - cy) ** 2)]
        else:
            boxes.sort(key=lambda b: -b.area)
        return boxes

    # ------------------------------------------------------------------ faces
    @torch.no_grad()
    def super_resolve_face(self, lr: torch.Tensor) -> torch.Tensor:
        """LR aligned faces ``(N, 3, n, n)`` in [0, 1] -> 128x128 faces in [0, 1]."""
        out = self.face(lr.float()).clamp(0, 1)
        if self.pixel is not None and self.fidelity is not None:
            out = self.fidelity * self.pixel(lr.float()).clamp(0, 1) + (1 - self.fidelity) * out
        return out

    def restore_aligned(self, crop: np.ndarray) -> np.ndarray:
        """An aligned face crop (uint8 ``(n, n, 3)``) -> its face x ``scale`` (uint8)."""
        h, w = crop.shape[:2]
        if h != w:
            raise ValueError(f"an aligned crop is square, got {w}x{h}")
        x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].double()
        if h != self.lr_size:
            x = imresize(x, size=(self.lr_size, self.lr_size))
        face = self.super_resolve_face((x / 255.0).clamp(0, 1))
        target = h * self.scale
        if face.shape[-1] != target:
            face = imresize(face.double(), size=(target, target)).clamp(0, 1)
        return quantize_uint8(face[0].double() * 255.0).permute(1, 2, 0).numpy()

    def restore(self, image: np.ndarray, on_face: Callable[[], None] | None = None) -> Restored:
        """Restore a uint8 RGB photo ``(H, W, 3)``."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {image.shape}")
        s = self.scale
        base = image.copy() if self.background is None else self.background.upscale_array(image)
        out = torch.from_numpy(np.ascontiguousarray(base)).permute(2, 0, 1)[None].double()
        result = Restored(image=base)
        predictor = self._hog_detector()
        source = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].double()
        template = get_template(TEMPLATE)
        for box in self.detect(image):
            side = min(box.right - box.left, box.bottom - box.top)
            if side < self.min_face:
                result.skipped.append((box, f"{side:.0f} px < --min-face {self.min_face}"))
                continue
            landmarks = torch.from_numpy(predictor.landmarks_in(image, box))
            lr, _ = align(source, landmarks, template, size=(self.lr_size, self.lr_size))
            inside, _ = align(torch.ones_like(source[:, :1]), landmarks, template,
                              size=(self.lr_size, self.lr_size))  # fmt: skip
            face = self.super_resolve_face((lr / 255.0).clamp(0, 1)).double()
            valid = F.interpolate(inside, size=face.shape[-2:], mode="bilinear").clamp(0, 1)
            valid = (valid > 0.999).double()  # no weight where the crop saw outside the photo
            out_points = (landmarks + 0.5) * s - 0.5
            m = fit_similarity(out_points[None], template.points)[0]
            out = _paste(out, face * 255.0, m, self.feather, valid)
            result.faces.append(box)
            if on_face is not None:
                on_face()
        result.image = quantize_uint8(out[0]).permute(1, 2, 0).numpy()
        return result


def _paste(image: torch.Tensor, crop: torch.Tensor, m: torch.Tensor, feather: int, mask):
    """:func:`paste_back` on the window of ``image`` the crop covers (not the whole photo)."""
    ch, cw = crop.shape[-2:]
    corners = torch.tensor([[0, 0], [cw - 1, 0], [0, ch - 1], [cw - 1, ch - 1]], dtype=m.dtype)
    a, t = m[:, :2], m[:, 2]
    inverse = torch.linalg.solve(a, (corners - t).T).T  # crop corners in image pixels
    h, w = image.shape[-2:]
    x0 = int(max(0, np.floor(float(inverse[:, 0].min())) - 1))
    y0 = int(max(0, np.floor(float(inverse[:, 1].min())) - 1))
    x1 = int(min(w, np.ceil(float(inverse[:, 0].max())) + 2))
    y1 = int(min(h, np.ceil(float(inverse[:, 1].max())) + 2))
    if x1 <= x0 or y1 <= y0:
        return image
    shifted = m.clone()
    shifted[:, 2] = t + a @ torch.tensor([x0, y0], dtype=m.dtype)
    window = image[:, :, y0:y1, x0:x1]
    pasted = paste_back(window, crop.to(image.dtype), shifted, feather, mask)
    image = image.clone()
    image[:, :, y0:y1, x0:x1] = pasted
    return image


@dataclass
class RestoreReport:
    """What ``srkit faces restore`` did: files written, faces per image, images skipped."""

    written: list = field(default_factory=list)  # output paths
    faces: dict[str, int] = field(default_factory=dict)  # image -> faces restored
    small: dict[str, int] = field(default_factory=dict)  # image -> faces under --min-face
    failed: dict[str, str] = field(default_factory=dict)  # image -> why it was not written


def restore_images(
    source,
    output,
    restorer: FaceRestorer,
    *,
    aligned: bool = False,
    on_image: Callable[[int], None] | None = None,
) -> RestoreReport:
    """Restore every image of ``source`` (a photo, folder, zip or glob) into ``output``.

    A single photo is written to ``output`` when it names an image file, else into the folder
    ``output`` (sub-folders kept, ``.png``). Unreadable images are reported, not fatal.
    """
    from pathlib import Path, PurePosixPath

    from srkit.data.sources import open_source
    from srkit.image.io import IMAGE_EXTENSIONS, ImageReadError, write_image

    src = open_source(source, recursive=True)
    out = Path(output)
    single = len(src.names) == 1 and out.suffix.lower() in IMAGE_EXTENSIONS
    report = RestoreReport()
    for name in src.names:
        try:
            image = src.read(name).to_rgb8()
        except ImageReadError as error:
            report.failed[name] = str(error)
            if on_image:
                on_image(1)
            continue
        if aligned:
            pixels, count, small = restorer.restore_aligned(image), 1, 0
        else:
            restored = restorer.restore(image)
            pixels, count, small = restored.image, len(restored.faces), len(restored.skipped)
        target = out if single else out / PurePosixPath(name).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_image(target, pixels)
        report.written.append(target)
        report.faces[name] = count
        if small:
            report.small[name] = small
        if on_image:
            on_image(1)
    return report
