"""Tiled super-resolution with overlap and linear blending, emitting output rows as they finish.

The image is cut into a grid of *cores* that partition it; each tile is its core widened by
``overlap`` LR pixels of context on every side (clipped at the image border). Neighbouring tiles
are blended with a linear ramp over a band of ``2 * blend`` LR pixels centred on the seam
(``blend = overlap // 2`` by default), so every output pixel comes from tile outputs that are at
least ``overlap - blend`` LR pixels away from their tile's edge. When that distance covers the
network's receptive field, the tiles see exactly the context the whole image gives them and the
result equals the whole-image result up to float rounding.

Rows of the output are final once the next row of tiles can no longer touch them: ``run_tiled``
yields them then, so a caller can encode them to disk and the whole output never has to exist in
memory at once.

Tiles, weights and blocks are NumPy float32 arrays (this module imports no PyTorch, so the
torch-free :mod:`srkit.infer.fastpath` shares it); a torch model's tile function converts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from srkit.common.bands import over_bands

# (1, C, h, w) float32 tile in [0, 1] -> (1, C', h * s, w * s) float32
TileFn = Callable[[np.ndarray], np.ndarray]
# (y0, y1, x0, x1) LR region -> (1, C, y1 - y0, x1 - x0) float32 array
ReadFn = Callable[[int, int, int, int], np.ndarray]


@dataclass(frozen=True)
class Span:
    """One tile along one axis: ``core`` is owned, ``inner`` is read (core +- overlap)."""

    core0: int
    core1: int
    in0: int
    in1: int


def split_axis(length: int, tile: int, overlap: int) -> list[Span]:
    """Balanced cores of at most ``tile`` pixels covering ``length``, widened by ``overlap``.

    Every tile reads the same number of pixels: a tile that the border clips (or a core one
    pixel shorter than the others) reads further into the image instead. Static-shape backends
    (OpenVINO, torch.compile, TensorRT) then compile and warm up one model, not one per edge
    tile; the extra context only brings the tile closer to the whole-image result.
    """
    if length <= 0:
        raise ValueError(f"cannot tile an axis of length {length}")
    if tile <= 0:
        raise ValueError(f"tile size must be positive, got {tile}")
    count = max(1, math.ceil(length / tile))
    bounds = [round(i * length / count) for i in range(count + 1)]
    spans = [
        (a, b, max(0, a - overlap), min(length, b + overlap))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    size = max(i1 - i0 for _, _, i0, i1 in spans)
    return [
        Span(a, b, i0, i0 + size) if i0 == 0 else Span(a, b, min(i0, i1 - size), i1)
        for a, b, i0, i1 in spans
    ]


def _ramp(span: Span, length: int, blend: int, scale: int) -> tuple[int, int, np.ndarray]:
    """HR range ``[o0, o1)`` a tile contributes to and its weights there (partition of unity)."""
    lo = span.core0 - blend if span.core0 > 0 else 0
    hi = span.core1 + blend if span.core1 < length else length
    o0, o1 = lo * scale, hi * scale
    x = np.arange(o0, o1, dtype=np.float32) + np.float32(0.5)
    weight = np.ones(o1 - o0, dtype=np.float32)
    band = np.float32(2 * blend * scale)
    if blend > 0:
        if span.core0 > 0:
            weight = np.minimum(weight, (x - np.float32(lo * scale)) / band)
        if span.core1 < length:
            weight = np.minimum(weight, (np.float32(hi * scale) - x) / band)
    return o0, o1, np.clip(weight, 0.0, 1.0)


@dataclass(frozen=True)
class TilePlan:
    """The tile grid of one image."""

    height: int
    width: int
    scale: int
    rows: list[Span]
    cols: list[Span]
    blend: int

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.cols)


def plan_tiles(
    height: int, width: int, scale: int, tile: int, overlap: int, blend: int | None = None
) -> TilePlan:
    """The grid for an ``height`` x ``width`` LR image with cores of at most ``tile`` pixels."""
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    rows = split_axis(height, tile, overlap)
    cols = split_axis(width, tile, overlap)
    smallest = min(min(s.core1 - s.core0 for s in rows), min(s.core1 - s.core0 for s in cols))
    if blend is None:
        blend = overlap // 2
    blend = max(0, min(blend, overlap, smallest // 2))
    return TilePlan(height, width, scale, rows, cols, blend)


def run_tiled(
    fn: TileFn,
    read: ReadFn,
    plan: TilePlan,
    on_tile: Callable[[], None] | None = None,
    *,
    reuse: bool = False,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(hr_row0, block)`` pairs, ``block`` ``(C, rows, W * s)`` float32, top to bottom.

    Together the blocks cover the output exactly once, in order. ``reuse``: every row of tiles
    is accumulated in one buffer, so a block is valid only until the next one is asked for (for
    callers that convert each block at once: a large output then touches a third of the fresh
    memory, which costs more than the arithmetic on some virtual machines).
    """
    s, height, width, blend = plan.scale, plan.height, plan.width, plan.blend
    out_w = width * s
    col_ramps = [_ramp(c, width, blend, s) for c in plan.cols]
    carry: np.ndarray | None = None  # rows [carry_start, acc0) already holding contributions
    emitted = 0
    row_ramps = [_ramp(r, height, blend, s) for r in plan.rows]
    most = max(r1 - r0 for r0, r1, _ in row_ramps)
    buffer: np.ndarray | None = None
    for r_index, (rspan, (r0, r1, rweight)) in enumerate(zip(plan.rows, row_ramps, strict=True)):
        acc: np.ndarray | None = None
        filled = 0  # columns [0, filled) of acc hold contributions; the rest is unwritten
        for cspan, (c0, c1, cweight) in zip(plan.cols, col_ramps, strict=True):
            tile = read(rspan.in0, rspan.in1, cspan.in0, cspan.in1)
            out = fn(tile)
            expected = ((rspan.in1 - rspan.in0) * s, (cspan.in1 - cspan.in0) * s)
            if out.ndim != 4 or tuple(out.shape[-2:]) != expected:
                raise RuntimeError(
                    f"the model returned {tuple(out.shape)} for a {tuple(tile.shape)} tile; "
                    f"expected (..., {expected[0]}, {expected[1]}) at x{s}"
                )
            if acc is None:
                if buffer is None or buffer.shape[0] != out.shape[1] or not reuse:
                    buffer = np.empty((out.shape[1], most, out_w), dtype=np.float32)
                acc = buffer[:, : r1 - r0]
            y0, x0 = r0 - rspan.in0 * s, c0 - cspan.in0 * s
            part = out[0, :, y0 : y0 + (r1 - r0), x0 : x0 + (c1 - c0)]
            _blend_in(acc[:, :, c0:c1], part, rweight, cweight, max(0, filled - c0))
            filled = max(filled, c1)
            if on_tile is not None:
                on_tile()
        assert acc is not None
        if carry is not None:
            acc[:, : carry.shape[1]] += carry
        last = r_index == len(plan.rows) - 1
        final_end = r1 if last else plan.rows[r_index + 1].core0 * s - blend * s
        done = final_end - r0
        if emitted != r0:
            raise AssertionError(f"tiling bookkeeping: emitted {emitted}, row starts {r0}")
        yield r0, acc[:, :done]
        emitted = r0 + done
        carry = None if last else acc[:, done:].copy()
        del acc


def _blend_in(
    acc: np.ndarray, part: np.ndarray, rows: np.ndarray, cols: np.ndarray, held: int
) -> None:
    """``acc += part * rows[:, None] * cols[None, :]`` where ``acc``'s first ``held`` columns
    already hold contributions, ``acc = ...`` on the rest (left unwritten: no zeros to fill or
    read back). A band of rows at a time (the weights stay in cache), over the cores; the
    weight-1 middle is added or copied without a multiply. The values are those of adding to
    zeros."""
    ones = np.flatnonzero(cols == 1.0)
    m0, m1 = (int(ones[0]), int(ones[-1]) + 1) if ones.size else (0, 0)
    cuts = sorted({0, len(cols), min(held, len(cols)), m0, m1})
    segments = [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
    step = 16

    def band(y0: int, y1: int) -> None:
        for y in range(y0, y1, step):
            ys = slice(y, min(y + step, y1))
            flat_rows = bool(np.all(rows[ys] == 1.0))
            for a, b in segments:
                src = part[:, ys, a:b]
                if not (flat_rows and m0 <= a and b <= m1):  # a ramp: weigh it
                    src = src * (rows[ys, None] * cols[None, a:b])
                if b <= held:
                    acc[:, ys, a:b] += src
                else:
                    acc[:, ys, a:b] = src

    over_bands(band, part.shape[1])


def assemble(blocks: Iterator[tuple[int, np.ndarray]], channels: int, height: int, width: int):
    """Stack yielded blocks into one ``(1, C, H, W)`` float32 array (for in-memory results)."""
    out = np.empty((1, channels, height, width), dtype=np.float32)
    for row0, block in blocks:
        out[0, :, row0 : row0 + block.shape[1]] = block
    return out


# --------------------------------------------------------------------------- tile size


def available_memory() -> int:
    """Bytes of memory available to this process (MemAvailable, cgroup limit if lower)."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 8 << 30
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(path).read().strip()  # noqa: SIM115
        except OSError:
            continue
        if text.isdigit() and int(text) < avail:
            avail = int(text)
    return avail


def activation_bytes_per_pixel(net: Any, in_channels: int, scale: int) -> float:
    """Rough peak bytes of activations per LR input pixel, from one forward of a small input.

    The probe is a real 32x32 forward (milliseconds for an SR network), not a meta-device
    trace: a meta forward pulls in torch's symbolic-shape machinery and costs about a second of
    start-up. Falls back to an estimate for a 64-feature network when the forward fails.
    """
    fallback = 4.0 * 64 * (1 + scale * scale) * 3
    if net is None:
        return fallback
    import torch

    size = 32
    largest: list[int] = []

    def hook(_module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            largest.append(output.numel())

    handles = []
    try:
        param = next(iter(net.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        handles = [m.register_forward_hook(hook) for m in net.modules()]
        with torch.inference_mode():
            net(torch.zeros((1, in_channels, size, size), device=device, dtype=dtype))
    except Exception:  # noqa: BLE001 - any failure just means: use the fallback
        return fallback
    finally:
        for h in handles:
            h.remove()
    if not largest:
        return fallback
    top = sorted(largest, reverse=True)[:3]
    # the three largest activations alive at once, in float32, plus the runtime's own scratch
    return 4.0 * sum(top) * 1.5 / (size * size)


def auto_tile_size(
    height: int,
    width: int,
    scale: int,
    channels: int,
    bytes_per_pixel: float,
    overlap: int,
    budget: int | None = None,
) -> int:
    """Largest tile core that keeps one tile's activations and one row of output within budget.

    ``budget`` defaults to a quarter of the available memory, at most 1 GiB. Small images get a
    single tile (the whole image).
    """
    if budget is None:
        budget = min(1 << 30, available_memory() // 4)
    budget = max(budget, 64 << 20)
    side = int(math.sqrt(budget / 2 / max(bytes_per_pixel, 1.0))) - 2 * overlap
    # the accumulator for one row of tiles: (tile + 2 overlap) * s rows x W * s x C float32
    row_bytes = width * scale * scale * channels * 4
    side_rows = int(budget / 2 / row_bytes) - 2 * overlap
    tile = max(32, min(side, side_rows if side_rows > 0 else 32))
    if height <= tile and width <= tile:
        return max(height, width)
    return tile
