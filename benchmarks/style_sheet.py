"""Contact sheets of srkit's style transfer, for docs/style.md.

    PYTHONPATH=src python benchmarks/style_sheet.py [--size 256] [--gatys-steps 10]

``docs/img/style_sheet.png``: a row per content photo and style: the content, the style, Gatys
(L-BFGS, the default objective), the published fast-neural-style output of
``style/reference-outputs`` where there is one, and, when given, a feed-forward model
(``--ff``, in the rows of its style) and an AdaIN decoder (``--adain``) at alpha 0.5 and 1.

Needs ``SRKIT_DATA`` (``style/``); every image is resized to ``--size`` (longer side) first.
Prints the wall time of each mode per image.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from srkit.common.machine import cpu_name
from srkit.features import feature_network
from srkit.style import AdainModel, gatys, load_image, load_style_model
from srkit.style.core import to_pil

REPO = Path(__file__).resolve().parents[1]
LABEL = 18  # pixels of caption above each tile


def fit(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize to ``size`` x ``size`` (centre crop of the shorter side first)."""
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = x[..., top : top + side, left : left + side]
    resized = torch.nn.functional.interpolate(
        crop, size=(size, size), mode="bicubic", align_corners=False, antialias=True
    )
    return resized.clamp(0, 1)


def sheet(rows: list[list[tuple[str, torch.Tensor]]], size: int, path: Path) -> None:
    cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (cols * (size + 4), len(rows) * (size + LABEL + 4)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        for c, (caption, image) in enumerate(row):
            x0, y0 = c * (size + 4), r * (size + LABEL + 4)
            draw.text((x0 + 2, y0 + 3), caption, fill="black")
            canvas.paste(to_pil(image), (x0, y0 + LABEL))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)
    print(f"wrote {path}")


class Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def run(self, mode: str, fn, *args, **kwargs) -> torch.Tensor:
        start = time.perf_counter()
        with torch.no_grad() if mode != "gatys" else torch.enable_grad():
            result = fn(*args, **kwargs)
            result = result.image if mode == "gatys" else result
        self.seconds.setdefault(mode, []).append(time.perf_counter() - start)
        return result.clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--gatys-steps", type=int, default=12, help="L-BFGS steps")
    parser.add_argument("--lbfgs-iters", type=int, default=10, help="evaluations per step")
    parser.add_argument("--content", nargs="+", default=["amber", "chicago"])
    parser.add_argument("--style", nargs="+", default=["mosaic", "candy"])
    parser.add_argument("--ff", default=None, help="feed-forward model (name or file)")
    parser.add_argument("--adain", default=None, help="AdaIN decoder (name or file)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = parser.parse_args()
    data = Path(os.environ.get("SRKIT_DATA", REPO.parent / "shared" / "data")) / "style"
    if not data.is_dir():
        sys.exit(f"no style data at {data} (set SRKIT_DATA)")
    size = args.size
    ff = load_style_model(args.ff) if args.ff else None
    adain = None
    if args.adain:
        decoder, manifest = load_style_model(args.adain)
        adain = AdainModel(feature_network(manifest.get("encoder", "stlpips_vgg16")), decoder)
    loss_net = feature_network("stlpips_vgg16")
    timer = Timer()

    def style_image(name: str) -> torch.Tensor:
        (path,) = [p for p in (data / "styles").iterdir() if p.stem == name]
        return fit(load_image(path), size)

    rows = []
    for name in args.content:
        content = fit(load_image(data / "content" / f"{name}.jpg"), size)
        for style_name in args.style:
            style = style_image(style_name)
            row = [(name, content), (f"style: {style_name}", style)]
            row.append((f"Gatys L-BFGS x{args.gatys_steps}", timer.run(
                "gatys", gatys, content, style, network=loss_net, steps=args.gatys_steps,
                lbfgs_iters=args.lbfgs_iters, show_progress=False,
            )))  # fmt: skip
            published = data / "reference-outputs" / f"{name}-{style_name}.jpg"
            if published.is_file():
                row.append(("published fast-neural-style", fit(load_image(published), size)))
            if ff is not None and ff[1].get("style_image", "").startswith(style_name):
                row.append(("srkit feed-forward", timer.run("feed-forward", ff[0], content)))
            if adain is not None:
                row.append(("AdaIN alpha 0.5", timer.run("adain", adain, content, style, 0.5)))
                row.append(("AdaIN alpha 1", timer.run("adain", adain, content, style, 1.0)))
            rows.append(row)
    sheet(rows, size, args.out / "style_sheet.png")
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, {size}x{size} images")
    for mode, values in timer.seconds.items():
        print(f"{mode}: {sum(values) / len(values):.2f} s per image ({len(values)} images)")


if __name__ == "__main__":
    main()
