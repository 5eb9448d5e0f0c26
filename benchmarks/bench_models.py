"""The shipped-models table: every shipped model and the official checkpoints, Set5, one run.

For each scale, `srkit bench`'s own runner scores the shipped models of that scale and the
official checkpoints found under ``--weights`` (IMDN, RLFN, CARN-M; skipped with a note when
absent) in both conventions, and prints a Markdown table: model, scale, params, training hours
(from the manifest), Set5 PSNR / SSIM modern and legacy, the paper's figure, and whether the
measured figure reproduces the manifest.

Usage:
  python benchmarks/bench_models.py [--weights ../shared/weights/official] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from srkit.bench.runner import evaluate_models
from srkit.common.machine import cpu_name
from srkit.data.builtin import bundled_set5, official_weights_dir
from srkit.models import resolve_model
from srkit.zoo import shipped_models

OFFICIAL = {  # scale -> (label, relative path, params as loaded)
    2: [("IMDN (official)", "imdn/IMDN_x2.pth"), ("RLFN (official)", "rlfn/rlfn_x2.pth")],
    3: [("IMDN (official)", "imdn/IMDN_x3.pth"), ("CARN-M (official)", "carn_m/carn_m.pth")],
    4: [("IMDN (official)", "imdn/IMDN_x4.pth"), ("RLFN (official)", "rlfn/rlfn_x4.pth")],
}
# The papers' Set5 PSNR at each scale (legacy convention for the classics, as they were run).
PAPER = {
    ("srcnn", 2): 36.66, ("srcnn", 3): 32.75, ("srcnn", 4): 30.49,
    ("fsrcnn", 2): 37.05, ("fsrcnn", 3): 33.18, ("fsrcnn", 4): 30.72,
    ("espcn", 3): 32.55,
    ("repan", 2): 37.6, ("repan", 3): 33.9, ("repan", 4): 31.8,  # the targets
    ("IMDN (official)", 2): 38.00, ("IMDN (official)", 3): 34.36, ("IMDN (official)", 4): 32.21,
    ("CARN-M (official)", 3): 33.99,
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=official_weights_dir())
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    set5 = bundled_set5()
    rows = []
    start = time.perf_counter()
    for scale in args.scales:
        specs = [(m.name, m.name, m) for m in shipped_models() if m.scale == scale]
        for label, relative in OFFICIAL.get(scale, []):
            path = args.weights / relative
            if path.is_file():
                specs.append((label, str(path), None))
            else:
                print(f"note: {path} not found, {label} x{scale} left out")
        for label, spec, shipped in specs:
            model = resolve_model(spec, scale)  # loaded once, scored in both conventions
            scores = {}
            for convention in ("modern", "legacy"):
                (result,) = evaluate_models({scale: model}, set5, convention=convention)
                scores[convention] = (result.psnr, result.ssim)
            family = shipped.arch if shipped is not None else label
            row = {
                "model": label,
                "scale": scale,
                "params": shipped.params if shipped is not None else None,
                "default": bool(shipped and shipped.default),
                "train_hours": None,
                "distilled_from": None,
                "psnr": scores["modern"][0],
                "ssim": scores["modern"][1],
                "psnr_legacy": scores["legacy"][0],
                "ssim_legacy": scores["legacy"][1],
                "paper": PAPER.get((family, scale)),
                "reproduces_manifest": None,
            }
            if shipped is not None:
                recipe = shipped.manifest["training_recipe"]
                seconds = recipe.get("wall_seconds_at_scale", recipe["wall_seconds"])
                row["train_hours"] = seconds / 3600
                row["distilled_from"] = recipe.get("distilled_from")
                row["reproduces_manifest"] = (
                    abs(row["psnr"] - shipped.set5_psnr) < 0.005
                    and abs(row["ssim"] - shipped.set5_ssim) < 5e-5
                )
            else:
                row["params"] = sum(p.numel() for p in model.net.parameters())
            rows.append(row)
    print(f"\nSet5, Y channel, border = scale; {cpu_name()}; {time.perf_counter() - start:.0f} s")
    print("| model | scale | params | train h | Set5 modern | Set5 legacy | paper | manifest |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        hours = f"{r['train_hours']:.2f}" if r["train_hours"] is not None else "-"
        name = r["model"] + (" (default)" if r["default"] else "")
        if r["distilled_from"]:
            name += " (KD)"
        check = {None: "-", True: "reproduced", False: "DIFFERS"}[r["reproduces_manifest"]]
        print(
            f"| {name} | x{r['scale']} | {r['params']:,} | {hours} "
            f"| {r['psnr']:.3f} / {r['ssim']:.4f} | {r['psnr_legacy']:.3f} / "
            f"{r['ssim_legacy']:.4f} | {r['paper'] or '-'} | {check} |"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
