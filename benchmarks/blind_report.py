"""Blind SR on the unpaired camera: how well degradations match its LR, no-reference scores of
the SR of its real LR, and a contact sheet (the figures of docs/blind.md and the #31 note).

    PYTHONPATH=src python benchmarks/blind_report.py \\
        --h2l runs/recipes/blind_camera_x4/01-camera_h2l/camera_h2l.safetensors \\
        --model default=repan_x4 --model real_x4=real_x4 --model blind_camera_x4=blind_camera_x4 \\
        [--hr-images 60] [--real-images 200] [--niqe-images 100] [-o docs/img/blind_sheet.png]

1. Match statistics (`srkit.metrics.lr_stats`): the camera's real LR against LR made from the same
   ``--hr-images`` BSDS200 images by MATLAB bicubic, Real-ESRGAN's second-order preset, and the
   learned H2L (with its JPEG), and each ``--degradation LABEL=FILE.yaml``; each statistic's
   gap to the real set (fake - real) and a domain
   classifier's held-out accuracy (0.5: indistinguishable). The HR photos are not the camera's
   (unpaired): even a perfect degradation leaves the content's share of each gap.
2. NIQE (lower is more natural) of x4 SR of the first ``--niqe-images`` real LR images: bicubic
   and each ``--model LABEL=NAME|FILE``; ``--record`` writes the figure of each shipped blind
   model into its manifest (``scores.unpaired-camera-x4``: the docs' generated table).
3. A contact sheet: centre crops of a few real LR images (nearest-neighbour enlarged), then
   bicubic and each model.

Needs ``SRKIT_DATA`` (the camera LR, BSDS200).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from srkit.bench.protocol import matlab_bicubic_lr, super_resolve_uint8
from srkit.common.machine import machine_summary
from srkit.data.sources import open_source
from srkit.infer.degrade import degrade_array, image_seed
from srkit.metrics.lr_stats import compare_sets, domain_classifier_accuracy
from srkit.metrics.niqe import niqe
from srkit.models import resolve_model
from srkit.train.ship import add_scores
from srkit.train.tasks.degradation import load_h2l
from srkit.train.tasks.supervised import make_degradation
from srkit.zoo import CAMERA_SCORES, find_model, shipped_models

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SRKIT_DATA", REPO.parent / "shared" / "data"))
CAMERA = DATA / "sr" / "unpaired-camera-x4"
HR_SET = DATA / "sr" / "train" / "BSDS200"
STATS = ("noise", "laplacian_var", "hf_ratio", "blockiness", "saturation", "std_g")
LABEL = 14


def _read(spec: Path, count: int) -> tuple[list[str], list[np.ndarray]]:
    names, images = [], []
    with open_source(str(spec)) as source:
        for name in source.names[:count]:
            names.append(name)
            images.append(np.ascontiguousarray(source.read(name).to_rgb8()))
    return names, images


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float()


def _array(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()


def _mod4(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[: rgb.shape[0] // 4 * 4, : rgb.shape[1] // 4 * 4])


def match_table(
    h2l_path: str, hr_count: int, real_count: int, steps: int, extra: list[tuple[str, str]]
) -> None:
    _, real = _read(CAMERA, real_count)
    names, hr = _read(HR_SET, hr_count)
    hr = [_mod4(x) for x in hr]
    preset = make_degradation({"preset": "realesrgan"})
    net, manifest = load_h2l(h2l_path)
    sets = {
        "bicubic": [_array(matlab_bicubic_lr(_tensor(x), 4)) for x in hr],
        "realesrgan": [
            _array(preset(_tensor(x) / 255.0, 4, np.random.default_rng([0, i])) * 255.0)
            for i, x in enumerate(hr)
        ],
        "h2l": [
            degrade_array(net, x, image_seed(0, n), manifest.get("jpeg_quality"))
            for n, x in zip(names, hr, strict=True)
        ],
    }
    for label, spec in extra:  # a degradation YAML of srkit's steps (data.degradation)
        degradation = make_degradation(spec)
        sets[label] = [
            _array(degradation(_tensor(x) / 255.0, 4, np.random.default_rng([1, i])) * 255.0)
            for i, x in enumerate(hr)
        ]
    print(f"\n## Match statistics: camera LR ({len(real)}) vs LR of {len(hr)} BSDS200 images\n")
    header = "| statistic | real (mean) | " + " | ".join(f"{k} - real" for k in sets) + " |"
    print(header)
    print("|" + " --- |" * (2 + len(sets)))
    rows = {k: {r.name: r for r in compare_sets(real, v)} for k, v in sets.items()}
    for stat in STATS:
        first = rows["bicubic"][stat]
        cells = " | ".join(f"{rows[k][stat].difference:+.4g}" for k in sets)
        print(f"| {stat} | {first.real.mean:.4g} | {cells} |")
    accuracies = []
    for key, fake in sets.items():
        started = time.perf_counter()
        accuracy = domain_classifier_accuracy(real, fake, steps=steps, seed=0)
        accuracies.append(f"{accuracy:.3f}")
        print(f"(classifier {key}: {time.perf_counter() - started:.0f} s)", flush=True)
    print(f"| classifier accuracy ({steps} steps) | | " + " | ".join(accuracies) + " |")
    print(f"\nH2L: {h2l_path} (jpeg_quality {manifest.get('jpeg_quality')})")


def niqe_table(models: list[tuple[str, str]], count: int, record: bool) -> None:
    _, real = _read(CAMERA, count)
    print(f"\n## NIQE of x4 SR of the first {len(real)} camera LR images (lower: more natural)\n")
    print("| model | NIQE mean | ms per image |")
    print("| --- | --- | --- |")
    for label, spec in [("bicubic", "bicubic"), *models]:
        model = resolve_model(spec, 4)
        scores, seconds = [], 0.0
        for rgb in real:
            started = time.perf_counter()
            sr = super_resolve_uint8(model, _tensor(rgb))
            seconds += time.perf_counter() - started
            scores.append(float(niqe(sr, border=4)[0]))
        print(f"| {label} | {np.mean(scores):.3f} | {1000 * seconds / len(real):.0f} |", flush=True)
        shipped = {m.name for m in shipped_models()}
        if record and spec in shipped and find_model(spec, 4).purpose == "blind":
            figures = {
                "niqe": round(float(np.mean(scores)), 4),
                "images": len(real),
                "ms_per_image": round(1000 * seconds / len(real), 1),
                "cpu": machine_summary()["cpu"],
            }
            add_scores(spec, CAMERA_SCORES, figures)
            print(f"(recorded in {spec}'s manifest: scores.{CAMERA_SCORES})")


def contact_sheet(models: list[tuple[str, str]], out: Path, rows: int, crop: int) -> None:
    names, real = _read(CAMERA, 400)
    picks = [i for i, x in enumerate(real) if min(x.shape[:2]) >= crop][:: max(1, 400 // rows)]
    picks = picks[:rows]
    columns = [("real LR", None), ("bicubic", "bicubic"), *models]
    side = crop * 4
    sheet = Image.new("RGB", (side * len(columns), (side + LABEL) * len(picks) + LABEL), "white")
    draw = ImageDraw.Draw(sheet)
    for c, (label, _) in enumerate(columns):
        draw.text((c * side + 3, 1), label, fill="black")
    loaded = {spec: resolve_model(spec, 4) for _, spec in columns if spec}
    for r, i in enumerate(picks):
        rgb = real[i]
        top, left = (rgb.shape[0] - crop) // 2, (rgb.shape[1] - crop) // 2
        lr = np.ascontiguousarray(rgb[top : top + crop, left : left + crop])
        for c, (_, spec) in enumerate(columns):
            if spec is None:
                tile = lr.repeat(4, 0).repeat(4, 1)
            else:  # the whole image, then the crop: no border effects in the tile
                sr = _array(super_resolve_uint8(loaded[spec], _tensor(rgb)).float())
                tile = sr[4 * top : 4 * (top + crop), 4 * left : 4 * (left + crop)]
            sheet.paste(Image.fromarray(tile), (c * side, LABEL + r * (side + LABEL)))
        draw.text((3, LABEL + r * (side + LABEL) + side + 1), names[i], fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"\nwritten: {out} ({len(picks)} images x {len(columns)} columns)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--h2l", required=True, help="the learned H2L (.safetensors)")
    parser.add_argument("--model", action="append", default=[], help="LABEL=NAME|FILE")
    parser.add_argument(
        "--degradation", action="append", default=[], help="LABEL=FILE.yaml: another LR column"
    )
    parser.add_argument("--hr-images", type=int, default=60)
    parser.add_argument("--real-images", type=int, default=200)
    parser.add_argument("--niqe-images", type=int, default=100)
    parser.add_argument("--steps", type=int, default=300, help="domain classifier steps")
    parser.add_argument("--rows", type=int, default=5)
    parser.add_argument("--crop", type=int, default=48, help="LR crop side in the sheet")
    parser.add_argument(
        "-o", "--output", type=Path, default=REPO / "docs" / "img" / "blind_sheet.png"
    )
    parser.add_argument(
        "--record", action="store_true", help="write the NIQE of shipped blind models into them"
    )
    parser.add_argument("--skip", action="append", default=[], choices=("match", "niqe", "sheet"))
    args = parser.parse_args()
    if not CAMERA.is_dir():
        raise SystemExit(f"{CAMERA}: not found (set SRKIT_DATA)")
    models = [tuple(m.split("=", 1)) for m in args.model]
    print(f"CPU: {machine_summary()['cpu']}, torch threads {torch.get_num_threads()}")
    if "match" not in args.skip:
        extra = [tuple(d.split("=", 1)) for d in args.degradation]
        match_table(args.h2l, args.hr_images, args.real_images, args.steps, extra)  # type: ignore[arg-type]
    if "niqe" not in args.skip:
        niqe_table(models, args.niqe_images, args.record)  # type: ignore[arg-type]
    if "sheet" not in args.skip:
        contact_sheet(models, args.output, args.rows, args.crop)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
