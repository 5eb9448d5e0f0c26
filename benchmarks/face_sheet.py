"""A contact sheet of face SR on LFW pairsDevTest faces (people no face model trained on).

    PYTHONPATH=src python benchmarks/face_sheet.py --scale 8 \\
        --model pixel=runs/face_table/x8/pixel/pixel.safetensors \\
        --model identity=face_x8 [--faces 6] [-o docs/img/faces_sheet_x8.png]

Columns: the LR (nearest-neighbour enlarged), bicubic, each ``--model LABEL=NAME|FILE``, the HR;
one row per face, the first image of each of ``--faces`` different people. Each SR tile is
captioned with its identity distance to the HR (dlib, the ``srkit faces eval`` protocol). Needs
``SRKIT_DATA`` (LFW); uses the ``srkit faces eval`` cache.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from srkit.bench.protocol import matlab_bicubic_lr, super_resolve_uint8
from srkit.faces.embed import get_embedder
from srkit.faces.evaluate import lfw_faceset, prepare
from srkit.models import resolve_model

REPO = Path(__file__).resolve().parents[1]
LABEL = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=8, choices=(4, 8))
    parser.add_argument("--model", action="append", default=[], help="LABEL=NAME|FILE")
    parser.add_argument("--faces", type=int, default=6)
    parser.add_argument("-o", "--output", type=Path, default=None)
    args = parser.parse_args()
    out = args.output or REPO / "docs" / "img" / f"faces_sheet_x{args.scale}.png"
    embedder = get_embedder()
    prepared = prepare(lfw_faceset(), embedder)
    people: dict[str, int] = {}
    for i, name in enumerate(prepared.names):
        people.setdefault(name.split("/")[0], i)
        if len(people) == args.faces:
            break
    idx = list(people.values())
    hr = torch.from_numpy(np.ascontiguousarray(prepared.hr()[idx]))
    landmarks = torch.from_numpy(prepared.extra("landmarks_dlib5")[idx])
    ref = torch.from_numpy(prepared.extra("hr_embedding")[idx])
    lr = matlab_bicubic_lr(hr, args.scale)
    columns: list[tuple[str, torch.Tensor]] = [
        (
            f"LR {lr.shape[-1]}px",
            lr.repeat_interleave(args.scale, -1).repeat_interleave(args.scale, -2),
        )  # fmt: skip
    ]
    specs = [("bicubic", "bicubic")] + [tuple(m.split("=", 1)) for m in args.model]
    for label, spec in specs:
        columns.append((label, super_resolve_uint8(resolve_model(spec, args.scale), lr)))
    columns.append(("HR", hr))
    h, w = hr.shape[-2:]
    sheet = Image.new("RGB", (w * len(columns), (h + LABEL) * len(idx) + LABEL), "white")
    draw = ImageDraw.Draw(sheet)
    for c, (label, images) in enumerate(columns):
        draw.text((c * w + 3, 2), label, fill="black")
        distances = None
        if label not in ("HR",) and not label.startswith("LR"):
            with torch.inference_mode():
                e = embedder(images.float() / 255.0, landmarks.double()).float()
            distances = (e - ref).norm(dim=1)
        for r in range(len(idx)):
            tile = Image.fromarray(images[r].permute(1, 2, 0).numpy())
            top = LABEL + r * (h + LABEL)
            sheet.paste(tile, (c * w, top))
            if distances is not None:
                draw.text((c * w + 3, top + h + 2), f"d {float(distances[r]):.3f}", fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"written: {out} ({len(idx)} faces x {len(columns)} columns)")


if __name__ == "__main__":
    main()
