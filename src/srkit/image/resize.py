"""MATLAB-exact ``imresize`` in PyTorch, plus the other bicubics users confuse it with.

SR papers make their low-resolution inputs with MATLAB's ``imresize(img, 1/s, 'bicubic')``:
a cubic kernel with ``a = -0.5``, widened by ``1/s`` when shrinking (antialiasing), symmetric
(mirror) borders, and the dimension with the smaller scale resized first. PIL's and OpenCV's
bicubics differ (PIL clips instead of mirroring; OpenCV uses ``a = -0.75`` and no antialiasing), so
they stay available under their own names and are never silently substituted.

Resizing is separable. Integer scales (the SR case) run as a few strided multiply-adds per
output phase; other scales as a product with a precomputed, cached weight matrix (dense for the
usual sizes, a gather of the few taps for very long dimensions).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

ResizeMethod = str

# Dense weight matrices beyond this many entries would waste memory; gather the taps instead.
_DENSE_LIMIT = 4_000_000


def _cubic(x: np.ndarray, a: float) -> np.ndarray:
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    near = ((a + 2) * absx3 - (a + 3) * absx2 + 1) * (absx <= 1)
    far = (a * absx3 - 5 * a * absx2 + 8 * a * absx - 4 * a) * ((absx > 1) & (absx <= 2))
    return near + far


def _triangle(x: np.ndarray) -> np.ndarray:
    return (1 + x) * ((x >= -1) & (x < 0)) + (1 - x) * ((x >= 0) & (x <= 1))


def _box(x: np.ndarray) -> np.ndarray:
    return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


@dataclass(frozen=True)
class _Kernel:
    function: Callable[[np.ndarray], np.ndarray]
    width: float
    antialias: bool  # default antialiasing when shrinking
    border: str  # "symmetric" (MATLAB) or "replicate" (OpenCV)


_KERNELS: dict[str, _Kernel] = {
    "bicubic": _Kernel(lambda x: _cubic(x, -0.5), 4.0, True, "symmetric"),
    "bilinear": _Kernel(_triangle, 2.0, True, "symmetric"),
    "nearest": _Kernel(_box, 1.0, False, "symmetric"),
    # OpenCV's INTER_CUBIC in float arithmetic: a = -0.75, no antialiasing, clamped border.
    "opencv_bicubic": _Kernel(lambda x: _cubic(x, -0.75), 4.0, False, "replicate"),
}

#: Every method name ``resize`` accepts. ``pil_bicubic`` runs Pillow itself.
METHODS: tuple[str, ...] = (*_KERNELS, "pil_bicubic")


def _border_map(indices: np.ndarray, in_length: int, border: str) -> np.ndarray:
    """Out-of-range source indices -> in-range ones (MATLAB mirrors, OpenCV clamps)."""
    if border == "symmetric":
        mirrored = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
        return mirrored[np.mod(indices, 2 * in_length)]
    return np.clip(indices, 0, in_length - 1)


@lru_cache(maxsize=256)
def contributions(
    in_length: int,
    out_length: int,
    scale: float,
    method: str = "bicubic",
    antialias: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and 0-based source indices ``(out_length, taps)`` of one resized dimension.

    This is MATLAB's ``contributions`` from ``imresize.m``: output pixel ``x`` (1-based) samples
    the input at ``u = x / scale + (1 - 1 / scale) / 2``.
    """
    weights, indices = _unbounded_contributions(out_length, scale, method, antialias)
    return weights, _border_map(indices, in_length, _KERNELS[method].border)


@lru_cache(maxsize=256)
def _unbounded_contributions(
    out_length: int, scale: float, method: str, antialias: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`contributions`, with indices not yet mapped into the input (may be < 0)."""
    kernel = _KERNELS[method]
    kernel_width = kernel.width
    if scale < 1 and antialias and kernel.antialias:
        function = lambda x: scale * kernel.function(scale * x)  # noqa: E731
        kernel_width = kernel_width / scale
    else:
        function = kernel.function
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = function(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    indices = indices.astype(np.int64) - 1  # to 0-based
    used = np.any(weights != 0, axis=0)
    return weights[:, used], indices[:, used]


@dataclass(frozen=True)
class _Polyphase:
    """Integer scales: output ``j = phase + period * m`` reads input ``start + step * m + k``.

    The weights repeat every ``period`` outputs, so a dimension is resized by ``taps`` strided
    multiply-adds per phase on a border-padded input: exact, and far cheaper than a dense
    matrix product (which spends most of its time multiplying zeros).
    """

    pad_index: np.ndarray  # source index of each padded position (border mapping applied)
    period: int
    step: int
    weights: tuple[tuple[float, ...], ...]  # (period, taps)
    starts: tuple[tuple[int, ...], ...]  # (period, taps), positions in the padded input


@lru_cache(maxsize=256)
def _polyphase(
    in_length: int, out_length: int, scale: float, method: str, antialias: bool
) -> _Polyphase | None:
    if scale >= 1 and float(scale).is_integer():
        period, step = int(scale), 1
    elif scale < 1 and (1 / scale) == round(1 / scale):
        period, step = 1, int(round(1 / scale))
    else:
        return None
    weights, indices = _unbounded_contributions(out_length, scale, method, antialias)
    if out_length <= period:
        return None
    periodic_weights = np.allclose(weights[period:], weights[:-period], rtol=0, atol=1e-13)
    periodic_indices = np.array_equal(indices[period:], indices[:-period] + step)
    if not (periodic_weights and periodic_indices):
        return None
    low, high = int(indices.min()), int(indices.max())
    pad_left = max(0, -low)
    positions = np.arange(low if low < 0 else 0, max(high + 1, in_length))
    pad_index = _border_map(positions, in_length, _KERNELS[method].border)
    return _Polyphase(
        pad_index=pad_index,
        period=period,
        step=step,
        weights=tuple(tuple(float(w) for w in row) for row in weights[:period]),
        starts=tuple(tuple(int(i) + pad_left for i in row) for row in indices[:period]),
    )


def _resize_polyphase(x: torch.Tensor, dim: int, plan: _Polyphase, out_length: int):
    index = torch.from_numpy(plan.pad_index).to(x.device)
    padded = x.index_select(dim, index).movedim(dim, -1)
    out = padded.new_empty((*padded.shape[:-1], out_length))
    for phase in range(plan.period):
        count = len(range(phase, out_length, plan.period))
        span = plan.step * (count - 1) + 1
        acc = None
        for weight, start in zip(plan.weights[phase], plan.starts[phase], strict=True):
            source = padded[..., start : start + span : plan.step]
            if acc is None:
                acc = source * weight
            else:
                acc.add_(source, alpha=weight)
        out[..., phase :: plan.period] = acc
    return out.movedim(-1, dim)


@lru_cache(maxsize=64)
def _dense_matrix(
    in_length: int, out_length: int, scale: float, method: str, antialias: bool
) -> np.ndarray:
    weights, indices = contributions(in_length, out_length, scale, method, antialias)
    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    rows = np.repeat(np.arange(out_length), weights.shape[1])
    np.add.at(matrix, (rows, indices.ravel()), weights.ravel())
    return matrix


_TORCH_CACHE: dict[tuple, torch.Tensor | tuple[torch.Tensor, torch.Tensor]] = {}


def _operator(
    in_length: int,
    out_length: int,
    scale: float,
    method: str,
    antialias: bool,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    key = (in_length, out_length, scale, method, antialias, dtype, device)
    cached = _TORCH_CACHE.get(key)
    if cached is None:
        if in_length * out_length <= _DENSE_LIMIT:
            matrix = _dense_matrix(in_length, out_length, scale, method, antialias)
            cached = torch.from_numpy(matrix).to(dtype=dtype, device=device)
        else:
            weights, indices = contributions(in_length, out_length, scale, method, antialias)
            cached = (
                torch.from_numpy(weights).to(dtype=dtype, device=device),
                torch.from_numpy(indices).to(device=device),
            )
        if len(_TORCH_CACHE) > 128:
            _TORCH_CACHE.clear()
        _TORCH_CACHE[key] = cached
    return cached


def _resize_last_dim(x: torch.Tensor, op: torch.Tensor | tuple[torch.Tensor, torch.Tensor]):
    if isinstance(op, torch.Tensor):
        return x @ op.T
    weights, indices = op
    gathered = x[..., indices]  # (..., out, taps)
    return (gathered * weights).sum(dim=-1)


def _resize_dim(x: torch.Tensor, dim: int, op) -> torch.Tensor:
    if dim == x.dim() - 2 and isinstance(op, torch.Tensor):
        return op @ x  # rows: no transpose needed
    moved = x.movedim(dim, -1)
    return _resize_last_dim(moved, op).movedim(-1, dim)


def output_size(
    height: int, width: int, scale: float | None, size: tuple[int, int] | None
) -> tuple[tuple[int, int], tuple[float, float]]:
    """MATLAB's rule: ``size = ceil(scale * in)``; a given size implies ``scale = out / in``."""
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    if size is not None:
        out_h, out_w = int(size[0]), int(size[1])
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"output size must be positive, got {size}")
        return (out_h, out_w), (out_h / height, out_w / width)
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    out = (int(math.ceil(scale * height)), int(math.ceil(scale * width)))
    return out, (float(scale), float(scale))


def imresize(
    x: torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    kernel: ResizeMethod = "bicubic",
    antialias: bool = True,
) -> torch.Tensor:
    """MATLAB ``imresize`` on a float tensor ``(..., H, W)`` (e.g. ``(N, C, H, W)``).

    ``kernel`` is ``bicubic`` (MATLAB's, the SR protocol), ``bilinear``, ``nearest`` or
    ``opencv_bicubic``. Computation happens in ``x``'s dtype; use float64 for bit-level agreement
    with MATLAB and float32 for speed (differences are ~1e-6 of the range).
    """
    if kernel == "pil_bicubic":
        return _pil_resize(x, scale, size)
    if kernel not in _KERNELS:
        raise ValueError(f"unknown resize method {kernel!r}; choose from {', '.join(METHODS)}")
    if not x.is_floating_point():
        raise TypeError(f"imresize needs a float tensor, got {x.dtype}; see imresize_uint8")
    if x.dim() < 2:
        raise ValueError(f"expected (..., H, W), got shape {tuple(x.shape)}")
    height, width = x.shape[-2], x.shape[-1]
    (out_h, out_w), (scale_h, scale_w) = output_size(height, width, scale, size)
    plan = [(x.dim() - 2, height, out_h, scale_h), (x.dim() - 1, width, out_w, scale_w)]
    if scale_h > scale_w:  # MATLAB resizes the dimension with the smaller scale first
        plan.reverse()
    for dim, in_length, out_length, dim_scale in plan:
        if in_length == out_length and dim_scale == 1.0:
            continue
        polyphase = _polyphase(in_length, out_length, dim_scale, kernel, antialias)
        if polyphase is not None:
            x = _resize_polyphase(x, dim, polyphase, out_length)
            continue
        op = _operator(in_length, out_length, dim_scale, kernel, antialias, x.dtype, x.device)
        x = _resize_dim(x, dim, op)
    return x


def imresize_uint8(
    x: torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    kernel: ResizeMethod = "bicubic",
    antialias: bool = True,
    compute_dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """``imresize`` of a uint8 tensor, rounded and saturated as MATLAB does for uint8 images."""
    if x.dtype != torch.uint8:
        raise TypeError(f"imresize_uint8 needs a uint8 tensor, got {x.dtype}")
    if kernel == "pil_bicubic":
        return _pil_resize(x, scale, size)
    resized = imresize(x.to(compute_dtype), scale, size, kernel, antialias)
    return quantize_uint8(resized)


def imresize_array(
    image: np.ndarray,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    compute_dtype: torch.dtype = torch.float64,
) -> np.ndarray:
    """MATLAB bicubic ``imresize`` of a uint8 ``(H, W, C)`` array (decoded images), uint8 out."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    resized = imresize_uint8(tensor, scale, size, compute_dtype=compute_dtype)
    return resized.permute(1, 2, 0).numpy()


def quantize_uint8(x: torch.Tensor) -> torch.Tensor:
    """Values in 0..255 (float) -> uint8, rounding half up and saturating like MATLAB."""
    return torch.floor(x.clamp(0, 255) + 0.5).to(torch.uint8)


def _pil_resize(x: torch.Tensor, scale: float | None, size: tuple[int, int] | None):
    """Pillow's BICUBIC, channel by channel (uint8 in -> uint8 out, float in -> float out)."""
    from PIL import Image

    height, width = x.shape[-2], x.shape[-1]
    (out_h, out_w), _ = output_size(height, width, scale, size)
    flat = x.reshape(-1, height, width).cpu()
    planes = []
    for plane in flat:
        if x.dtype == torch.uint8:
            image = Image.fromarray(plane.numpy(), mode="L")
            resized = np.asarray(image.resize((out_w, out_h), Image.Resampling.BICUBIC))
        else:
            image = Image.fromarray(plane.to(torch.float32).numpy(), mode="F")
            resized = np.asarray(image.resize((out_w, out_h), Image.Resampling.BICUBIC))
        planes.append(torch.from_numpy(resized.copy()))
    out = torch.stack(planes).reshape(*x.shape[:-2], out_h, out_w)
    return out.to(device=x.device, dtype=x.dtype)


def resize(
    x: torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    method: ResizeMethod = "bicubic",
) -> torch.Tensor:
    """Resize with any named method; uint8 in gives uint8 out (rounded), float gives float."""
    if x.dtype == torch.uint8:
        return imresize_uint8(x, scale, size, kernel=method)
    return imresize(x, scale, size, kernel=method)
