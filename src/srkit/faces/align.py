"""Face alignment: MATLAB ``cp2tform(..., 'similarity')`` fits, templates, batched warps.

Conventions
-----------
* Points are ``(x, y)`` in pixel coordinates with the centre of the top-left pixel at ``(0, 0)``
  (0-based, like OpenCV and dlib; add 1 for MATLAB's 1-based points).
* A transform is a ``(2, 3)`` (or batched ``(N, 2, 3)``) matrix ``M`` mapping a point of the
  *source image* to the *aligned crop*: ``[u, v] = M @ [x, y, 1]``.
* Warps sample bilinearly with zeros outside the image, are batched (``torch.grid_sample``) and
  differentiable with respect to the pixels.

``fit_similarity`` is MATLAB's ``cp2tform(src, dst, 'similarity')``: the least-squares
non-reflective similarity, fitted (as MATLAB and dlib both do) in the template -> image direction
and inverted, and also the reflective one (x mirrored), keeping whichever leaves the smaller
residual (MATLAB's ``findSimilarity``; ``reflective=False`` is ``'nonreflective similarity'``).
With 5 landmarks and dlib's template this is exactly the geometry of ``dlib.get_face_chip``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "TEMPLATES",
    "Template",
    "align",
    "dlib5_template",
    "face_chip",
    "fit_similarity",
    "invert_affine",
    "landmarks68_to_5",
    "paste_back",
    "transform_points",
    "warp_affine",
]

# dlib's 5-point face template (get_face_chip_details), unit square, before padding. Order of dlib's
# 5-point predictor: subject's left eye outer, left eye inner, right eye outer, right eye inner
# corners, base of the nose.
DLIB5_UNIT = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)


def dlib5_template(size: int, padding: float = 0.25) -> np.ndarray:
    """dlib's 5 points for a ``size`` x ``size`` chip with ``padding`` (0.25 for face recognition).

    Unit coordinates are converted to pixel centres (``u * size - 0.5``), which is the geometry of
    ``dlib.get_face_chip`` up to dlib's own ``(size*s - 1)/(size - 1)`` corner rounding.
    """
    return (padding + DLIB5_UNIT) / (2 * padding + 1) * size - 0.5


@dataclass(frozen=True)
class Template:
    """Where 5 landmarks go in an aligned crop of ``size = (height, width)``.

    ``landmarks`` names the point set: ``"dlib5"`` (dlib's 5-point predictor order) or
    ``"eyes_nose_mouth"`` (left eye centre, right eye centre, nose tip, left and right mouth
    corners as seen in the image: MTCNN's / SphereFace's order, from dlib's 68 points).
    """

    name: str
    size: tuple[int, int]
    points: np.ndarray
    landmarks: str


TEMPLATES: dict[str, Template] = {
    # SphereFace / CosFace (the seed's 112x96), and ArcFace (insightface) 112x112.
    "sphereface": Template(
        "sphereface",
        (112, 96),
        np.array(
            [
                [30.2946, 51.6963],
                [65.5318, 51.5014],
                [48.0252, 71.7366],
                [33.5493, 92.3655],
                [62.7299, 92.2041],
            ]
        ),
        "eyes_nose_mouth",
    ),
    "arcface": Template(
        "arcface",
        (112, 112),
        np.array(
            [
                [38.2946, 51.6963],
                [73.5318, 51.5014],
                [56.0252, 71.7366],
                [41.5493, 92.3655],
                [70.7299, 92.2041],
            ]
        ),
        "eyes_nose_mouth",
    ),
    # Face SR crop: dlib's 128x128 face chip (padding 0.25), what face-SR evaluation uses as HR.
    "facesr128": Template("facesr128", (128, 128), dlib5_template(128), "dlib5"),
    # The input of dlib's face-recognition ResNet: 150x150, padding 0.25.
    "dlib150": Template("dlib150", (150, 150), dlib5_template(150), "dlib5"),
}
TEMPLATES["cosface"] = TEMPLATES["sphereface"]


def get_template(template: str | Template) -> Template:
    if isinstance(template, Template):
        return template
    try:
        return TEMPLATES[template]
    except KeyError:
        raise ValueError(
            f"unknown face template {template!r}: expected one of {', '.join(sorted(TEMPLATES))}"
        ) from None


def landmarks68_to_5(points: np.ndarray | torch.Tensor, kind: str = "eyes_nose_mouth"):
    """Reduce dlib's 68 points ``(..., 68, 2)`` to 5: ``eyes_nose_mouth`` or ``dlib5``."""
    p = points
    if kind == "eyes_nose_mouth":
        parts = [
            p[..., 36:42, :].mean(-2),
            p[..., 42:48, :].mean(-2),
            p[..., 30, :],
            p[..., 48, :],
            p[..., 54, :],
        ]
    elif kind == "dlib5":
        parts = [p[..., 45, :], p[..., 42, :], p[..., 36, :], p[..., 39, :], p[..., 33, :]]
    else:
        raise ValueError(f"unknown 5-point set {kind!r}")
    if isinstance(p, torch.Tensor):
        return torch.stack(parts, -2)
    return np.stack(parts, -2)


def _as_tensor(x, dtype=torch.float64) -> torch.Tensor:
    return (
        x.to(dtype) if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=dtype)
    )


def _nonreflective_inverse(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """MATLAB's ``findNonreflectiveSimilarity(uv=src, xy=dst)``: the forward ``src -> dst`` matrix.

    As in MATLAB (and dlib's ``find_similarity_transform(template, landmarks)``), the least
    squares is solved for the *inverse* map ``xy -> uv`` (template -> image, ``uv = [x y 1] Tinv``
    with ``Tinv = [[sc, -ss], [ss, sc], [tx, ty]]``), which is then inverted.
    """
    x, y = dst[..., 0], dst[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    A = torch.cat([torch.stack([x, y, one, zero], -1), torch.stack([y, -x, zero, one], -1)], -2)
    rhs = torch.cat([src[..., 0], src[..., 1]], -1).unsqueeze(-1)  # (N, 2K, 1)
    if torch.linalg.matrix_rank(A).min() < 4:
        raise ValueError("degenerate point set: at least 2 distinct points are needed")
    sc, ss, tx, ty = torch.linalg.lstsq(A, rhs).solution[..., 0].unbind(-1)
    # u = sc x + ss y + tx ; v = -ss x + sc y + ty   (dst -> src)
    inv = torch.stack([torch.stack([sc, ss, tx], -1), torch.stack([-ss, sc, ty], -1)], -2)
    return invert_affine(inv)


def fit_similarity(src, dst, reflective: bool = True) -> torch.Tensor:
    """MATLAB ``cp2tform(src, dst, 'similarity')`` as a ``(N, 2, 3)`` matrix mapping ``src -> dst``.

    ``src`` (e.g. detected landmarks) is ``(K, 2)`` or ``(N, K, 2)`` (K >= 2 points), ``dst`` (e.g.
    a template) the same shape or one ``(K, 2)`` for the whole batch. With ``reflective`` the
    mirrored fit is also tried and kept when its forward residual (MATLAB's ``norm``, the matrix
    2-norm) is smaller. Returns float64; a single pair gives ``(2, 3)``.
    """
    s, d = _as_tensor(src), _as_tensor(dst)
    single = s.ndim == 2
    if single:
        s = s.unsqueeze(0)
    if d.ndim == 2:
        d = d.unsqueeze(0).expand(s.shape[0], -1, -1)
    if s.shape[-1] != 2 or s.shape != d.shape or s.shape[-2] < 2:
        raise ValueError(f"point sets must be (N, K>=2, 2) and match: {s.shape} vs {d.shape}")
    m = _nonreflective_inverse(s, d)
    if reflective:
        d_r = d.clone()
        d_r[..., 0] = -d_r[..., 0]
        m2 = _nonreflective_inverse(s, d_r)
        m2 = torch.cat([-m2[..., :1, :], m2[..., 1:, :]], -2)  # then mirror x back
        r1 = torch.linalg.matrix_norm(transform_points(s, m) - d, ord=2)
        r2 = torch.linalg.matrix_norm(transform_points(s, m2) - d, ord=2)
        m = torch.where((r2 < r1).view(-1, 1, 1), m2, m)
    return m[0] if single else m


def transform_points(points, m) -> torch.Tensor:
    """Apply ``(…, 2, 3)`` affine matrices to ``(…, K, 2)`` points."""
    p, mm = _as_tensor(points), _as_tensor(m)
    return p @ mm[..., :2].transpose(-1, -2) + mm[..., 2].unsqueeze(-2)


def invert_affine(m) -> torch.Tensor:
    """Inverse of ``(…, 2, 3)`` affine matrices."""
    mm = _as_tensor(m)
    a = torch.linalg.inv(mm[..., :2])
    t = -(a @ mm[..., 2:])
    return torch.cat([a, t], -1)


def warp_affine(
    images: torch.Tensor,
    m,
    size: tuple[int, int],
    mode: str = "bilinear",
) -> torch.Tensor:
    """Warp ``(N, C, H, W)`` images by ``m`` (source -> output points) into ``size = (h, w)``.

    ``m`` is ``(2, 3)`` (shared) or ``(N, 2, 3)``. Output pixel ``(u, v)`` samples the source at
    ``M^-1 (u, v)``: bilinear, zeros outside. Differentiable in ``images``.
    """
    if images.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) images, got {tuple(images.shape)}")
    n, _, h_in, w_in = images.shape
    h, w = size
    inv = invert_affine(m)
    if inv.ndim == 2:
        inv = inv.unsqueeze(0).expand(n, -1, -1)
    if inv.shape[0] != n:
        raise ValueError(f"{inv.shape[0]} transforms for {n} images")

    # Map output pixel coordinates to normalised source coordinates (align_corners=True:
    # -1 and +1 are the centres of the first and last pixels), folded into one affine theta.
    def norm(k: int) -> float:
        return 2.0 / max(k - 1, 1)

    out_to_pix = torch.tensor(
        [[(w - 1) / 2.0, 0.0, (w - 1) / 2.0], [0.0, (h - 1) / 2.0, (h - 1) / 2.0], [0, 0, 1.0]],
        dtype=torch.float64,
    )
    pix_to_norm = torch.tensor(
        [[norm(w_in), 0.0, -1.0], [0.0, norm(h_in), -1.0], [0, 0, 1.0]], dtype=torch.float64
    )
    inv3 = torch.cat([inv, inv.new_tensor([0.0, 0.0, 1.0]).expand(n, 1, 3)], 1)
    theta = (pix_to_norm @ inv3 @ out_to_pix)[:, :2]
    grid = F.affine_grid(theta.to(images.dtype), [n, 1, h, w], align_corners=True)
    return F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=True)


def _prefilter(images: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-downsample by the integer part of the smallest shrink factor (anti-aliasing).

    Bilinear sampling of a face much larger than the crop would alias (dlib goes through an image
    pyramid for the same reason). Pixel ``j`` of the pooled image is centred on ``k j + (k-1)/2``.
    """
    shrink = 1.0 / torch.sqrt(torch.linalg.det(m[..., :2]).abs())  # source px per crop px
    k = int(shrink.min().floor().item())
    if k < 2:
        return images, m
    pooled = F.avg_pool2d(images, k, k, ceil_mode=True, count_include_pad=False)
    up = torch.tensor([[k, 0.0, (k - 1) / 2], [0.0, k, (k - 1) / 2], [0, 0, 1.0]], dtype=m.dtype)
    m3 = torch.cat([m, m.new_tensor([0.0, 0.0, 1.0]).expand(m.shape[0], 1, 3)], 1)
    return pooled, (m3 @ up)[:, :2]


def align(
    images: torch.Tensor,
    landmarks,
    template: str | Template = "facesr128",
    size: tuple[int, int] | None = None,
    reflective: bool = True,
    antialias: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Align faces: fit ``landmarks`` ``(N, 5, 2)`` to the template, warp to its size.

    ``size`` rescales the template (e.g. 224x192 for a 112x96 template). With ``antialias`` a face
    more than twice the crop's scale is box-downsampled first. Returns the crops ``(N, C, h, w)``
    and the transforms ``(N, 2, 3)`` (image -> crop) for :func:`paste_back`.
    """
    t = get_template(template)
    pts = t.points
    out = t.size
    if size is not None and tuple(size) != t.size:
        sy, sx = size[0] / t.size[0], size[1] / t.size[1]
        pts = (pts + 0.5) * np.array([sx, sy]) - 0.5
        out = tuple(size)
    lm = _as_tensor(landmarks)
    if lm.ndim == 2:
        lm = lm.unsqueeze(0)
    if lm.shape[1:] != pts.shape:
        raise ValueError(
            f"template {t.name} takes {pts.shape[0]} {t.landmarks} points, got {tuple(lm.shape)}"
        )
    m = fit_similarity(lm, pts, reflective=reflective)
    src, m_src = _prefilter(images, m) if antialias else (images, m)
    return warp_affine(src, m_src, out), m


def face_chip(images: torch.Tensor, landmarks5, size: int = 150, padding: float = 0.25):
    """dlib-style face chips from dlib 5-point landmarks (the input of dlib's face ResNet)."""
    tmpl = Template("chip", (size, size), dlib5_template(size, padding), "dlib5")
    return align(images, landmarks5, tmpl)[0]


def paste_back(
    image: torch.Tensor,
    crop: torch.Tensor,
    m,
    feather: int = 0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Inverse warp: put an aligned ``crop`` back into ``image`` (both ``(N, C, H, W)``).

    ``m`` is the image -> crop transform returned by :func:`align`. Pixels outside the crop keep
    the original; ``feather`` (crop pixels) softens the seam with a linear ramp at the crop edge.
    ``mask`` ``(N, 1, h, w)`` in [0, 1] (crop pixels) further weighs the crop, e.g. 0 where it
    was cut from outside its source image.
    """
    mm = _as_tensor(m)
    h, w = image.shape[-2:]
    given = mask
    mask = torch.ones_like(crop[:, :1])
    if feather > 0:
        ch, cw = crop.shape[-2:]
        ys = torch.arange(ch, dtype=crop.dtype)
        xs = torch.arange(cw, dtype=crop.dtype)
        ry = torch.minimum(ys + 1, ch - ys).clamp(max=feather) / feather
        rx = torch.minimum(xs + 1, cw - xs).clamp(max=feather) / feather
        mask = (ry[:, None] * rx[None, :]).expand_as(mask).contiguous()
    if given is not None:
        mask = mask * given.to(mask.dtype)
    back = warp_affine(crop * mask, invert_affine(mm), (h, w))
    mask_back = warp_affine(mask, invert_affine(mm), (h, w))
    return image * (1 - mask_back) + back
