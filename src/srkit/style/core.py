"""Style transfer: image I/O, Gatys optimisation, the AdaIN encoder, model files.

Loss networks come from :func:`srkit.features.feature_network` (``stlpips_vgg16`` offline by
default, or ``vgg16:PATH`` / ``vgg19:PATH``), and the Gram matrix and style loss from
:mod:`srkit.losses.perceptual`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from srkit.common.files import write_bytes_atomic
from srkit.common.progress import progress_bar
from srkit.features import FeatureNet, feature_network
from srkit.losses.perceptual import TotalVariationLoss
from srkit.style.nets import AdainDecoder, TransformerNet, adain, channel_stats
from srkit.style.objective import (
    StyleObjective,
    objective_for,
    objective_weights,
    pixel_features,
)
from srkit.weights.errors import WeightsError
from srkit.weights.native import (
    STYLE_ARCHS,
    read_manifest,
    save_same_size_model,
    weights_file,
)

DEFAULT_NETWORK = "stlpips_vgg16"
#: AdaIN's style layers and encoder output (relu4_1 exists in VGG16 and VGG19 alike)
ADAIN_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


# --------------------------------------------------------------------------- images


def load_image(path: str | Path, size: int | None = None) -> torch.Tensor:
    """An image file -> ``(1, 3, H, W)`` RGB in [0, 1]; ``size`` resizes the longer side."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such image file")
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if size is not None:
                if size < 8:
                    raise ValueError(f"size must be >= 8 pixels, got {size}")
                w, h = img.size
                k = size / max(w, h)
                img = img.resize((max(1, round(w * k)), max(1, round(h * k))), Image.BICUBIC)
            array = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1)[None].contiguous()


def to_pil(x: torch.Tensor) -> Image.Image:
    array = (x[0].detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0).round()
    return Image.fromarray(array.astype(np.uint8))


def save_image(x: torch.Tensor, path: str | Path) -> Path:
    """``(1, 3, H, W)`` in [0, 1] -> an image file, written atomically (format from suffix)."""
    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF",
           ".tiff": "TIFF", ".bmp": "BMP"}  # fmt: skip
    if path.suffix.lower() not in fmt:
        raise ValueError(f"{path}: output must end in {', '.join(fmt)}")
    buffer = io.BytesIO()
    to_pil(x).save(buffer, format=fmt[path.suffix.lower()], quality=95)
    return write_bytes_atomic(path, buffer.getvalue())


# --------------------------------------------------------------------------- Gatys


@dataclass
class GatysResult:
    image: torch.Tensor
    losses: list[float]  # the total loss after each step


def gatys(
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    network: str | FeatureNet = DEFAULT_NETWORK,
    steps: int = 300,
    optimizer: Literal["lbfgs", "adam"] = "lbfgs",
    objective: str = "auto",
    content_weight: float | None = None,
    style_weight: float | None = None,
    tv_weight: float = 1e-4,
    lr: float | None = None,
    init: Literal["content", "noise"] = "content",
    lbfgs_iters: int = 20,
    show_progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> GatysResult:
    """Optimise an image so its features match ``content`` and its Gram matrices match
    ``style`` (Gatys, Ecker & Bethge, CVPR 2016), under the terms of ``objective``
    (:func:`srkit.style.objective.objective_for`: ``auto`` is ``relative`` for the offline
    trunk, ``published`` for an ImageNet VGG file). ``content_weight`` / ``style_weight``
    default to the objective's.

    One "step" is one optimizer step (an L-BFGS step evaluates the loss up to ``lbfgs_iters``
    times).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be lbfgs or adam, got {optimizer!r}")
    net = feature_network(network) if isinstance(network, str) else network
    settings = objective_for(objective, net.name)
    cw, sw = objective_weights(settings, content_weight, style_weight)
    if tv_weight < 0:
        raise ValueError(f"tv_weight must be >= 0, got {tv_weight}")
    terms = StyleObjective(net, style, settings)
    tv = TotalVariationLoss("l2")
    image = (content.clone() if init == "content" else torch.rand_like(content)).contiguous()
    image.requires_grad_(True)
    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS([image], lr=lr or 1.0, max_iter=lbfgs_iters)
    else:
        opt = torch.optim.Adam([image], lr=lr or 0.01)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = cw * terms.content_loss(image, content) + sw * terms.style_loss(image)
        loss = loss + tv_weight * tv(image)
        loss.backward()
        return loss

    losses: list[float] = []
    with progress_bar("loss {task.fields[loss]:.4g}", enabled=show_progress) as progress:
        task = progress.add_task(f"gatys ({optimizer})", total=steps, loss=float("nan"))
        for step in range(steps):
            loss = opt.step(closure)
            with torch.no_grad():
                image.clamp_(0, 1)
            losses.append(float(loss.detach()))
            progress.update(task, advance=1, loss=losses[-1])
            if on_step is not None:
                on_step(step, losses[-1])
    return GatysResult(image.detach(), losses)


# --------------------------------------------------------------------------- AdaIN


def fit_size(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Crop (or replicate-pad) a decoder output to ``h`` x ``w``: the ST-LPIPS trunk's blurred
    pooling rounds sizes up, so 8x its relu4_1 size can exceed the input's."""
    x = x[..., :h, :w]
    ph, pw = h - x.shape[-2], w - x.shape[-1]
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


class AdainModel(torch.nn.Module):
    """Encoder (a frozen feature network to relu4_1) + AdaIN + trained decoder."""

    def __init__(self, encoder: FeatureNet, decoder: AdainDecoder) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, ["relu4_1"])["relu4_1"]

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        c = self.encode(content)
        t = adain(c, self.encode(style))
        t = alpha * t + (1 - alpha) * c
        return fit_size(self.decoder(t), *content.shape[-2:])


def adain_losses(
    model: AdainModel,
    content: torch.Tensor,
    style: torch.Tensor,
    style_weight: float = 10.0,
    *,
    relative: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Huang & Belongie's training loss: ``|f(g(t)) - t|^2`` plus ``style_weight`` times the
    mean/std matches at relu1_1..relu4_1 between the output and the style.

    ``relative`` (the ``relative`` objective of :mod:`srkit.style.objective`, for the offline
    trunk) divides each term by its target's energy, averages the style layers, and adds the
    mean/std match of the pixels themselves (the palette)."""
    with torch.no_grad():
        s_feats = model.encoder(style, ADAIN_LAYERS)
        t = adain(model.encode(content), s_feats["relu4_1"])
    out = fit_size(model.decoder(t), *content.shape[-2:])
    o_feats = model.encoder(out, ADAIN_LAYERS)
    content_term = ((o_feats["relu4_1"] - t) ** 2).mean()
    pairs = [(o_feats[k], s_feats[k]) for k in ADAIN_LAYERS]
    if relative:
        content_term = content_term / (t**2).mean().clamp_min(1e-12)
        pairs.append((pixel_features(out), pixel_features(style)))
    style_term = out.new_zeros(())
    for fake, real in pairs:
        om, osd = channel_stats(fake)
        sm, ssd = channel_stats(real)
        term = ((om - sm) ** 2).mean() + ((osd - ssd) ** 2).mean()
        if relative:
            term = term / ((sm**2).mean() + (ssd**2).mean()).clamp_min(1e-12)
        style_term = style_term + term
    if relative:
        style_term = style_term / len(pairs)
    loss = content_term + style_weight * style_term
    return loss, {"content": content_term.detach(), "style": style_term.detach()}


# --------------------------------------------------------------------------- model files


def save_style_model(net: torch.nn.Module, path: str | Path, manifest: dict[str, Any]) -> Path:
    """``path`` (.safetensors) + ``path.json``, an srkit manifest (purpose ``style``, scale 1,
    sha256) around ``manifest``'s fields (``arch``, ``options``, recipe ...); both written
    atomically. Returns the weights' path."""
    if manifest.get("arch") not in STYLE_ARCHS:
        raise ValueError(f"save_style_model: arch {manifest.get('arch')!r}, not {STYLE_ARCHS}")
    return save_same_size_model(net, path, manifest, purpose="style")


def style_model_path(model: str | Path) -> Path:
    """A style model file, or the weights of the shipped style model of that name."""
    from srkit.zoo import model_weights_path

    return model_weights_path(model, "style")


def load_style_model(model: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A TransformerNet or AdaIN decoder and its manifest, from a file or a shipped name
    (``srkit models --purpose style``); the weights are checked against the sha256."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = style_model_path(model)
    mpath = path.with_suffix(".json")
    if not path.is_file() or not mpath.is_file():
        raise ValueError(f"{path}: a style model needs {path.name} and {mpath.name}")
    try:
        manifest = read_manifest(mpath)
        if manifest["arch"] not in STYLE_ARCHS:
            raise WeightsError(f"arch {manifest['arch']!r} is not one of {', '.join(STYLE_ARCHS)}")
        state = load_file(str(weights_file(mpath, manifest)))
    except (WeightsError, SafetensorError, OSError) as error:
        raise ValueError(f"{path}: not a readable style model ({error})") from None
    kind, options = manifest["arch"], manifest["options"]
    net: torch.nn.Module = (TransformerNet if kind == "transformer_net" else AdainDecoder)(
        **options
    )
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not fit {kind} {options}: {error}") from None
    return net.eval(), manifest
