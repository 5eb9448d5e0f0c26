"""``Upscaler``: a model, its backend and precision, tiling and colour handling, reusable.

Colour: RGB images go through the model as they are (Y-only networks upscale Y and bicubic
Cb/Cr inside ``NetworkModel``); grayscale images are replicated to RGB for the model and the
output's channel mean is kept, so gray stays gray; alpha is upscaled separately with MATLAB
bicubic; 16-bit input gives 16-bit output; ICC profile and EXIF are carried over.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from srkit.deploy import prepare
from srkit.image.io import LoadedImage, image_from_array, read_image
from srkit.image.resize import imresize
from srkit.infer.tiled import DEFAULT_OVERLAP, PNG_LEVEL, TiledUpscaler, to_pixels
from srkit.infer.tiling import activation_bytes_per_pixel, assemble, run_tiled
from srkit.models import SelfEnsemble, SRModel, resolve_model
from srkit.zoo import DEFAULT_NAME

__all__ = ["DEFAULT_OVERLAP", "PNG_LEVEL", "Upscaler", "load_model", "to_pixels", "upscale"]

ModelSpec = str | os.PathLike | SRModel


def load_model(model: ModelSpec | None, scale: int | None) -> SRModel:
    """A name, weight file or ready ``SRModel`` -> ``SRModel``; None: srkit's default model."""
    if model is None:
        return resolve_model(DEFAULT_NAME, scale)  # the zoo picks the default scale
    if isinstance(model, (str, os.PathLike)):
        spec = os.fspath(model)
        if scale is None and spec.lower() in ("bicubic", "bilinear", "nearest"):
            raise ValueError(f"{spec}: pass scale= for an interpolation model")
        return resolve_model(spec, scale)  # type: ignore[arg-type] - files accept None
    if not callable(model) or not hasattr(model, "scale"):
        raise TypeError(f"model must be a name, a weight file or an SRModel, not {model!r}")
    if scale is not None and int(model.scale) != int(scale):
        raise ValueError(f"{model.name} is an x{model.scale} model; asked for x{scale}")
    return model


class Upscaler(TiledUpscaler):
    """A reusable super-resolver.

    ``model``: an ``SRModel``, a weight file or an interpolation name. ``tile``: core size of a
    tile in LR pixels (``None``: chosen from the image size and available memory; ``0``: never
    tile). ``overlap``: LR pixels of context around each tile (half of it is blended).
    ``backend``/``precision``: see ``srkit.deploy`` (``torch``/``fp32`` runs the model as is);
    ``backend="auto"`` times the installed backends once per machine and model and takes the
    fastest within 0.05 dB of fp32 on Set5 (:mod:`srkit.deploy.auto`; ``precision`` then limits
    the choice to one precision, and ``on_message`` hears about the measuring).
    ``ensemble``: x8 geometric self-ensemble. ``memory_budget``: bytes for one tile's work.
    ``png_level``: deflate level of PNG output (0-9; default :data:`PNG_LEVEL`).
    A model whose input convention has an ``input_size`` (aligned face crops) is never tiled,
    and an image of another size is refused with a one-line error.
    """

    def __init__(
        self,
        model: ModelSpec | None = None,
        *,
        scale: int | None = None,
        tile: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
        blend: int | None = None,
        backend: str = "torch",
        precision: str | None = None,
        ensemble: bool = False,
        memory_budget: int | None = None,
        calib: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        on_message: Callable[[str], None] | None = None,
        png_level: int = PNG_LEVEL,
    ) -> None:
        self._setup_tiles(tile, overlap, blend, memory_budget, png_level)
        base = load_model(model, scale)
        self.base_model = base
        self.scale = int(base.scale)
        convention = getattr(base, "convention", None)
        self.input_size: tuple[int, int] | None = getattr(convention, "input_size", None)
        if ensemble and self.input_size is not None and len(set(self.input_size)) > 1:
            raise ValueError(
                f"{base.name}: the self-ensemble transposes its input, and this model takes only "
                f"{self.input_size[1]}x{self.input_size[0]} images"
            )
        self.backend_choice = None
        if backend == "auto":
            from srkit.deploy.auto import choose_backend

            self.backend_choice = choose_backend(base, precision=precision, log=on_message)
            backend, precision = self.backend_choice.backend, self.backend_choice.precision
        precision = precision or "fp32"
        self.backend = backend
        self.precision = precision
        if backend != "torch" or precision != "fp32":
            base = prepare(base, backend=backend, precision=precision, calib=calib, cache=cache_dir)
        self.model: SRModel = SelfEnsemble(base) if ensemble else base
        self._bytes_per_pixel: float | None = None

    @property
    def name(self) -> str:
        return self.model.name

    def bytes_per_pixel(self) -> float:
        if self._bytes_per_pixel is None:
            net = getattr(self.base_model, "net", None)
            convention = getattr(self.base_model, "convention", None)
            channels = convention.in_channels if convention is not None else 3
            self._bytes_per_pixel = activation_bytes_per_pixel(net, channels, self.scale)
        return self._bytes_per_pixel

    # ----------------------------------------------------------------------- core

    def _tile_fn(self, color_channels: int) -> Callable[[np.ndarray], np.ndarray]:
        model, scale = self.model, self.scale

        def run(array: np.ndarray) -> np.ndarray:
            tile = torch.from_numpy(array)
            color = tile[:, :color_channels]
            rgb = color.expand(-1, 3, -1, -1) if color_channels == 1 else color
            out = model(rgb.contiguous()).float()
            if color_channels == 1:
                out = out.mean(dim=1, keepdim=True)
            if tile.shape[1] != color_channels:
                alpha = imresize(tile[:, color_channels:].contiguous(), scale=scale)
                out = torch.cat((out, alpha.to(out.device)), dim=1)
            return out.detach().cpu().numpy()

        return run

    def upscale_tensor(
        self, x: torch.Tensor, on_tile: Callable[[], None] | None = None
    ) -> torch.Tensor:
        """``(N, 3, H, W)`` (or ``(3, H, W)``) float RGB in [0, 1] -> float, tiled, unclamped."""
        single = x.dim() == 3
        batch = x.unsqueeze(0) if single else x
        if batch.dim() != 4 or batch.shape[1] not in (1, 3):
            raise ValueError(f"expected (N, 3, H, W) or (N, 1, H, W), got {tuple(x.shape)}")
        n, c, height, width = batch.shape
        plan = self.plan(height, width, c)
        results = []
        for i in range(n):
            image = batch[i : i + 1].float()

            def read(y0: int, y1: int, x0: int, x1: int, image=image) -> np.ndarray:
                return np.ascontiguousarray(image[:, :, y0:y1, x0:x1].cpu().numpy())

            blocks = run_tiled(self._tile_fn(c), read, plan, on_tile)
            out = assemble(blocks, c, height * self.scale, width * self.scale)
            results.append(torch.from_numpy(out))
        out = torch.cat(results)
        return out[0] if single else out

    # ----------------------------------------------------------------------- convenience

    def __call__(self, image: Any) -> Any:
        """Upscale a tensor, a NumPy array, a PIL image, a ``LoadedImage`` or an image file.

        Tensors give tensors (float, unclamped), arrays give arrays of the same dtype and
        layout, PIL images give PIL images, files and ``LoadedImage`` give a ``LoadedImage``.
        """
        if isinstance(image, torch.Tensor):
            return self.upscale_tensor(image)
        if isinstance(image, LoadedImage):
            return self.upscale_image(image)
        if isinstance(image, (str, os.PathLike)):
            return self.upscale_image(read_image(image))
        if isinstance(image, np.ndarray):
            return self.upscale_array(image)
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - Pillow is a dependency
            Image = None
        if Image is not None and isinstance(image, Image.Image):
            loaded = image_from_array(np.asarray(image.convert(_pil_mode(image))))
            result = self.upscale_image(loaded)
            arr = result.pixels
            if result.alpha is not None:
                arr = np.concatenate([arr, result.alpha[:, :, None]], axis=2)
            return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
        raise TypeError(f"cannot upscale a {type(image).__name__}")


def _pil_mode(image: Any) -> str:
    if image.mode in ("L", "LA", "RGB", "RGBA"):
        return image.mode
    if image.mode in ("1", "I", "I;16"):
        return "L"
    return "RGBA" if "A" in image.mode or "transparency" in image.info else "RGB"


def upscale(image: Any, model: ModelSpec | None = None, **options: Any) -> Any:
    """Upscale one image with ``model`` (see :class:`Upscaler` for the options and types)."""
    return Upscaler(model, **options)(image)
