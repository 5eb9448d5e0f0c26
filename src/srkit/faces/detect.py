"""Face detection and landmarks with dlib (offline: dlib-bin + face-recognition-models).

``FaceDetector`` wraps dlib's HOG frontal-face detector and its 5- and 68-point shape predictors.
Images are uint8 RGB arrays ``(H, W, 3)``. When no face is found, :class:`FaceNotFoundError` is
raised unless the caller gives a ``fallback_box`` (e.g. the centre box of a pre-cropped data set
such as LFW), in which case the landmarks are predicted inside that box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srkit.faces.paths import MissingModelError, model_file
from srkit.image.io import ImageReadError

__all__ = [
    "Box",
    "Detection",
    "FaceDetector",
    "FaceNotFoundError",
    "crop_landmarks68",
    "import_dlib",
]

PREDICTORS = {
    5: "shape_predictor_5_face_landmarks.dat",
    68: "shape_predictor_68_face_landmarks.dat",
}


class FaceNotFoundError(ValueError):
    """No face was detected in an image (and no fallback box was given)."""

    def __init__(self, name: str, detail: str = "") -> None:
        self.name = name
        self.detail = detail
        msg = f"{name}: no face found by dlib's HOG detector"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg + "; pass a fallback box to use a fixed face region instead")

    def __reduce__(self):  # keep the arguments across process boundaries
        return (type(self), (self.name, self.detail))


def import_dlib():
    """Import dlib or explain how to install it."""
    try:
        import dlib
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingModelError(
            "dlib is not installed: pip install 'srkit[faces]' (installs dlib-bin, the prebuilt "
            "wheel; plain 'dlib' compiles for ~10 minutes)"
        ) from e
    return dlib


@dataclass(frozen=True)
class Box:
    """A face box ``left, top, right, bottom`` (inclusive pixels, like dlib's rectangle)."""

    left: int
    top: int
    right: int
    bottom: int
    score: float = float("nan")

    @property
    def area(self) -> int:
        return max(0, self.right - self.left + 1) * max(0, self.bottom - self.top + 1)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2, (self.top + self.bottom) / 2)


@dataclass(frozen=True)
class Detection:
    """A face: its box, its landmarks ``(K, 2)`` float (x, y) and whether it was detected."""

    box: Box
    landmarks: np.ndarray
    detected: bool


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ImageReadError(
            name, "not a uint8 RGB image", f"got {a.dtype} array of shape {a.shape}"
        )
    if min(a.shape[:2]) < 8:
        raise ImageReadError(
            name, "image too small for face detection", f"{a.shape[1]}x{a.shape[0]}"
        )
    return np.ascontiguousarray(a)


class FaceDetector:
    """dlib HOG detector + shape predictor (``points`` = 5 or 68), loaded once.

    ``upsample`` is the number of times dlib upsamples the image before detecting (1 finds faces
    down to ~40 px). ``select`` picks among several faces: ``"largest"`` or ``"center"`` (closest
    to the image centre, for pre-cropped data sets).
    """

    def __init__(self, points: int = 5, upsample: int = 1, select: str = "largest") -> None:
        if points not in PREDICTORS:
            raise ValueError(f"landmark model must have 5 or 68 points, got {points}")
        if select not in ("largest", "center"):
            raise ValueError(f"select must be 'largest' or 'center', got {select!r}")
        dlib = import_dlib()
        self._dlib = dlib
        self.points = points
        self.upsample = upsample
        self.select = select
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(model_file(PREDICTORS[points])))

    def detect(self, image: np.ndarray, name: str = "<image>") -> list[Box]:
        """All faces, best first (by the ``select`` rule)."""
        img = _check_image(image, name)
        rects, scores, _ = self._detector.run(img, self.upsample, 0.0)
        boxes = [
            Box(r.left(), r.top(), r.right(), r.bottom(), float(s))
            for r, s in zip(rects, scores, strict=True)
        ]
        if self.select == "largest":
            boxes.sort(key=lambda b: -b.area)
        else:
            cy, cx = (img.shape[0] - 1) / 2, (img.shape[1] - 1) / 2
            boxes.sort(key=lambda b: (b.center[0] - cx) ** 2 + (b.center[1] - cy) ** 2)
        return boxes

    def landmarks_in(self, image: np.ndarray, box: Box, name: str = "<image>") -> np.ndarray:
        """Landmarks ``(K, 2)`` predicted inside ``box``."""
        img = _check_image(image, name)
        rect = self._dlib.rectangle(int(box.left), int(box.top), int(box.right), int(box.bottom))
        shape = self._predictor(img, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def __call__(
        self,
        image: np.ndarray,
        name: str = "<image>",
        fallback_box: Box | tuple[int, int, int, int] | None = None,
    ) -> Detection:
        """Detect the face and its landmarks; fall back to ``fallback_box`` or raise."""
        boxes = self.detect(image, name)
        if boxes:
            box, detected = boxes[0], True
        elif fallback_box is not None:
            box = fallback_box if isinstance(fallback_box, Box) else Box(*fallback_box)
            detected = False
        else:
            raise FaceNotFoundError(name, f"{image.shape[1]}x{image.shape[0]} image")
        return Detection(box, self.landmarks_in(image, box, name), detected)


def crop_landmarks68(predictor: FaceDetector, images) -> np.ndarray:
    """dlib's 68 points ``(N, 68, 2)`` of aligned face crops (uint8-valued ``(N, 3, H, W)``),
    each predicted in the template's face square ``[h/6, 5h/6]`` (the face box of a crop with
    padding 0.25), so SR and HR crops are read in the same box."""
    if predictor.points != 68:
        raise ValueError("crop_landmarks68 needs the 68-point predictor")
    h, w = images.shape[-2:]
    box = Box(w / 6, h / 6, 5 * w / 6, 5 * h / 6)
    pixels = np.asarray(images).transpose(0, 2, 3, 1).astype(np.uint8)
    if not len(pixels):
        return np.zeros((0, 68, 2))
    return np.stack([predictor.landmarks_in(np.ascontiguousarray(p), box) for p in pixels])
