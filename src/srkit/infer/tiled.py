"""The tiled part of upscaling, shared by :class:`srkit.infer.upscaler.Upscaler` (PyTorch models)
and the torch-free :mod:`srkit.infer.fastpath`: the tile plan, colour handling around the
model's tile function, and writing (PNG streamed row block by row block).

Colour: RGB images go through the model as they are; grayscale images are replicated to RGB
for the model and the output's channel mean is kept, so gray stays gray; alpha is upscaled by
the subclass's tile function; 16-bit input gives 16-bit output; ICC profile and EXIF are
carried over.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from srkit.common.bands import over_bands
from srkit.image import deflate
from srkit.image.io import LoadedImage, from_tensor, read_image, write_image
from srkit.infer.pngstream import PNGStreamWriter
from srkit.infer.sink import Sink
from srkit.infer.tiling import TilePlan, auto_tile_size, plan_tiles, run_tiled

DEFAULT_OVERLAP = 16


def _max_value(dtype: np.dtype) -> float:
    return 65535.0 if dtype == np.uint16 else 255.0


def tile_reader(pixels: np.ndarray, alpha: np.ndarray | None):
    """``read(y0, y1, x0, x1)`` for :func:`run_tiled`: ``(1, C [+1], h, w)`` float32 in [0, 1]
    from ``(H, W, C)`` uint8/uint16 pixels (and an ``(H, W)`` alpha)."""
    top = np.float32(_max_value(pixels.dtype))

    def read(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        part = pixels[y0:y1, x0:x1]
        if alpha is not None:
            part = np.concatenate([part, alpha[y0:y1, x0:x1, None]], axis=2)
        planes = np.ascontiguousarray(part.transpose(2, 0, 1), dtype=np.float32)
        planes /= top
        return planes[None]

    return read


def to_pixels(block: np.ndarray, dtype: np.dtype, chunk: int = 16) -> np.ndarray:
    """``(C, rows, W)`` float in [0, 1] -> ``(rows, W, C)`` uint8/uint16, clamped and rounded,
    a few rows at a time so the float temporaries stay small."""
    channels, rows, width = block.shape
    out = np.empty((rows, width, channels), dtype=dtype)

    def band(y0: int, y1: int) -> None:
        for r0 in range(y0, y1, chunk):
            r1 = min(r0 + chunk, y1)
            from_tensor(block[:, r0:r1], dtype, out=out[r0:r1])

    over_bands(band, rows)
    return out


#: PNG deflate level of upscaled output: a fast level (ISA-L, :mod:`srkit.image.deflate`), because
#: the encoder shares the cores with the network; levels 3-9 give files a few % smaller, slower
#: (experiments/README.md has the figures).
PNG_LEVEL = 2


class TiledUpscaler:
    """Tiles, colour and files around a tile function (subclasses give the model).

    Subclasses set ``scale``, ``name`` and ``input_size`` and define :meth:`bytes_per_pixel`
    and :meth:`_tile_fn`; :meth:`_setup_tiles` checks and keeps the tiling options.
    """

    scale: int
    input_size: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        raise NotImplementedError

    def _setup_tiles(
        self,
        tile: int | None,
        overlap: int,
        blend: int | None,
        memory_budget: int | None,
        png_level: int,
    ) -> None:
        self.png_level = deflate.check_level(png_level, "png_level")
        if tile is not None and tile < 0:
            raise ValueError(f"tile must be >= 0, got {tile}")
        if overlap < 0:
            raise ValueError(f"overlap must be >= 0, got {overlap}")
        self.tile = tile
        self.overlap = overlap
        self.blend = blend
        self.memory_budget = memory_budget

    def bytes_per_pixel(self) -> float:
        """Peak bytes of the network's activations per LR input pixel (sizes automatic tiles)."""
        raise NotImplementedError

    def _tile_fn(self, color_channels: int) -> Callable[[np.ndarray], np.ndarray]:
        """``(1, C [+1], h, w)`` float32 tile (colour channels, then alpha) -> the output tile."""
        raise NotImplementedError

    # ----------------------------------------------------------------------- planning

    def check_size(self, height: int, width: int) -> None:
        """Refuse an image that a fixed-input-size model (an aligned face crop) cannot take."""
        if self.input_size is not None and (height, width) != tuple(self.input_size):
            h, w = self.input_size
            raise ValueError(
                f"{self.name} takes only images of exactly {w}x{h} pixels (such as an aligned "
                f"face crop from `srkit faces align`); this one is {width}x{height}"
            )

    def tile_size(self, height: int, width: int, channels: int = 3) -> int:
        """The tile core size used for an ``height`` x ``width`` image."""
        if self.tile == 0 or self.input_size is not None:  # fixed-size networks see it whole
            return max(height, width)
        if self.tile is not None:
            return self.tile
        return auto_tile_size(
            height,
            width,
            self.scale,
            channels,
            self.bytes_per_pixel(),
            self.overlap,
            self.memory_budget,
        )

    def plan(self, height: int, width: int, channels: int = 3) -> TilePlan:
        self.check_size(height, width)
        tile = self.tile_size(height, width, channels)
        return plan_tiles(height, width, self.scale, tile, self.overlap, self.blend)

    # ----------------------------------------------------------------------- core

    def iter_array(
        self,
        pixels: np.ndarray,
        alpha: np.ndarray | None = None,
        on_tile: Callable[[], None] | None = None,
    ) -> tuple[TilePlan, Iterator[tuple[int, np.ndarray]]]:
        """Plan and lazily run ``pixels`` (``(H, W, C)`` uint8/uint16, C = 1 or 3) + alpha.

        Yields ``(row0, block)`` with ``block`` ``(C [+1], rows, W * s)`` float in [0, 1] units,
        valid until the next block is asked for (the rows of tiles share one buffer).
        """
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if pixels.dtype not in (np.uint8, np.uint16) or pixels.shape[2] not in (1, 3):
            raise ValueError(
                f"expected (H, W, 1|3) uint8/uint16 pixels, got {pixels.dtype} {pixels.shape}"
            )
        height, width, cc = pixels.shape
        if alpha is not None and alpha.shape != (height, width):
            raise ValueError(f"alpha of shape {alpha.shape} for {height}x{width} pixels")
        channels = cc + (alpha is not None)

        plan = self.plan(height, width, channels)
        blocks = run_tiled(self._tile_fn(cc), tile_reader(pixels, alpha), plan, on_tile, reuse=True)
        return plan, blocks

    def upscale_array(
        self, array: np.ndarray, alpha: np.ndarray | None = None
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """uint8/uint16 ``(H, W[, C])`` with C in 1..4 -> the same layout and dtype, x scale.

        A 2nd/4th channel is alpha; ``alpha=`` (``(H, W)``) gives it apart and returns a pair.
        """
        array = np.asarray(array)
        if array.dtype not in (np.uint8, np.uint16):
            raise TypeError(f"expected uint8 or uint16 pixels, got {array.dtype}")
        squeeze = array.ndim == 2
        arr3 = array[:, :, None] if squeeze else array
        own_alpha = None
        if arr3.shape[2] in (2, 4):
            arr3, own_alpha = arr3[:, :, :-1], arr3[:, :, -1]
        if own_alpha is not None and alpha is not None:
            raise ValueError("alpha given twice: as a channel and as alpha=")
        pixels, sr_alpha = self._to_arrays(arr3, own_alpha if alpha is None else alpha)
        if alpha is not None:
            return (pixels[:, :, 0] if squeeze else pixels), sr_alpha
        if sr_alpha is not None:
            return np.concatenate([pixels, sr_alpha[:, :, None]], axis=2)
        return pixels[:, :, 0] if squeeze else pixels

    def _to_arrays(
        self, pixels: np.ndarray, alpha: np.ndarray | None, on_tile=None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        plan, blocks = self.iter_array(pixels, alpha, on_tile)
        s = self.scale
        out = np.empty((plan.height * s, plan.width * s, pixels.shape[2]), dtype=pixels.dtype)
        out_alpha = None if alpha is None else np.empty(out.shape[:2], dtype=pixels.dtype)
        for row0, block in blocks:
            converted = to_pixels(block, pixels.dtype)
            rows = slice(row0, row0 + converted.shape[0])
            out[rows] = converted[:, :, : pixels.shape[2]]
            if out_alpha is not None:
                out_alpha[rows] = converted[:, :, -1]
        return out, out_alpha

    def upscale_image(self, image: LoadedImage, on_tile=None) -> LoadedImage:
        """A decoded image -> the upscaled one, same bit depth, alpha, ICC profile and EXIF."""
        pixels, alpha = self._to_arrays(image.pixels, image.alpha, on_tile)
        return LoadedImage(
            pixels=pixels,
            alpha=alpha,
            bit_depth=image.bit_depth,
            icc_profile=image.icc_profile,
            exif=image.exif,
            name=image.name,
        )

    # ----------------------------------------------------------------------- files

    def write(
        self,
        image: LoadedImage,
        target: str | os.PathLike,
        *,
        overwrite: bool = False,
        on_tile: Callable[[], None] | None = None,
        sink: Any = None,
    ) -> Callable[[], Path]:
        """Upscale ``image`` into ``target`` (format from its extension).

        PNG is streamed: rows are encoded as they are finished, so the whole output never has
        to exist in memory. Encoding runs on ``sink``'s thread (a private one when ``None``);
        the returned callable waits for the file and returns its path (or raises its error).
        """
        target = Path(target)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target}: exists (pass overwrite=True / --overwrite)")
        own_sink = sink is None
        sink = Sink() if own_sink else sink
        done = threading.Event()
        state: dict[str, Any] = {}

        def fail(error: BaseException) -> None:
            state.setdefault("error", error)

        def job(fn: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                if "error" in state:
                    return
                try:
                    fn()
                except BaseException as error:  # noqa: BLE001 - reported to the waiter
                    fail(error)

            return run

        try:
            self._write_jobs(image, target, on_tile, sink, job, state)
        except BaseException as error:
            fail(error)
        sink.put(done.set)

        def wait() -> Path:
            done.wait()
            if own_sink:
                sink.close()
            if "error" in state:
                writer = state.get("writer")
                if writer is not None:
                    writer.abort()
                raise state["error"]
            return target

        return wait

    def _write_jobs(self, image, target, on_tile, sink, job, state) -> None:
        dtype = image.pixels.dtype
        cc = image.pixels.shape[2]
        suffix = target.suffix.lower()
        plan, blocks = self.iter_array(image.pixels, image.alpha, on_tile)
        s = self.scale
        out_h, out_w = plan.height * s, plan.width * s
        has_alpha = image.alpha is not None
        if suffix == ".png":

            def open_writer() -> None:
                state["writer"] = PNGStreamWriter(
                    target,
                    out_w,
                    out_h,
                    cc + has_alpha,
                    16 if dtype == np.uint16 else 8,
                    icc_profile=image.icc_profile,
                    exif=image.exif,
                    level=self.png_level,
                )

            sink.put(job(open_writer))
            for _row0, block in blocks:
                rows = to_pixels(block, dtype)  # here: the float block is freed before queueing
                sink.put(job(lambda r=rows: state["writer"].write(r)))
            sink.put(job(lambda: state["writer"].close()))
            return
        out = np.empty((out_h, out_w, cc + has_alpha), dtype=dtype)

        for row0, block in blocks:
            out[row0 : row0 + block.shape[1]] = to_pixels(block, dtype)

        def save() -> None:
            depth = 16 if dtype == np.uint16 and suffix == ".png" else 8
            write_image(
                target,
                out,
                bit_depth=depth,
                icc_profile=image.icc_profile,
                exif=image.exif,
            )

        sink.put(job(save))

    def upscale_file(
        self,
        source: str | os.PathLike,
        target: str | os.PathLike,
        *,
        overwrite: bool = False,
        on_tile: Callable[[], None] | None = None,
    ) -> Path:
        """Read, upscale and write one file (PNG output streamed to disk)."""
        image = read_image(source)
        return self.write(image, target, overwrite=overwrite, on_tile=on_tile)()
