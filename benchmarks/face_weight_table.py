"""The pixel / identity loss-weight table of face SR, in srkit's setting.

Trains one face network per (pixel, identity) weight pair with the same architecture, data,
schedule and budget (``task: face`` on LFW's ``peopleDevTrain.txt`` people), then scores every
result and bicubic on ``pairsDevTest.txt`` with ``srkit faces eval``'s protocol::

    python benchmarks/face_weight_table.py --scale 8 --iters 1500
    python benchmarks/face_weight_table.py --scale 8 --only eval     # score finished runs again

Runs go to ``runs/face_table/x<scale>/<name>`` (a killed run resumes); the table is printed and
written to ``runs/face_table/x<scale>/table.json``. Needs ``SRKIT_DATA`` (LFW).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# (name, pixel weight, identity weight): the source note's table
WEIGHTS = [
    ("pixel", 1.0, 0.0),
    ("p10_id5", 10.0, 5.0),
    ("p5_id10", 5.0, 10.0),
    ("p1_id10", 1.0, 10.0),
    ("p0_id10", 0.0, 10.0),
]


def stage(name: str, scale: int, iters: int, pixel: float, identity: float) -> dict:
    losses = []
    if pixel > 0:
        losses.append({"name": "l1", "weight": pixel})
    if identity > 0:
        losses.append({"name": "identity", "weight": identity})
    return {
        "name": name,
        "task": "face",
        "arch": "repan_face",
        "scale": scale,
        "seed": 0,
        "data": {
            "train": ["${SRKIT_DATA}/faces/lfw/lfw-deepfunneled.zip"],
            "batch_size": 16,
            "workers": 0,
        },
        "train": {"iters": iters, "ema": 0.999, "checkpoint_every": 250},
        "val": {"every": 500},
        "optimizers": {"g": {"lr": 5.0e-4, "schedule": {"name": "cosine", "warmup": 50}}},
        "losses": {"g": losses},
        "face": {"val_people": 100, "select": "psnr" if identity == 0 else "identity"},
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=8, choices=(4, 8))
    parser.add_argument("--iters", type=int, default=1500)
    parser.add_argument("--only", choices=("train", "eval"), default=None)
    parser.add_argument("--names", nargs="*", default=None, help="a subset of the table's rows")
    args = parser.parse_args()
    base = ROOT / "runs" / "face_table" / f"x{args.scale}"
    rows = [w for w in WEIGHTS if args.names is None or w[0] in args.names]
    srkit = [sys.executable, "-m", "srkit.cli"]
    if args.only != "eval":
        for name, pixel, identity in rows:
            out = base / name
            out.mkdir(parents=True, exist_ok=True)
            if (out / f"{name}.safetensors").is_file():
                continue
            config = out / "config.yaml"
            config.write_text(yaml.safe_dump(stage(name, args.scale, args.iters, pixel, identity)))
            print(f"training {name} ({pixel} pixel, {identity} identity)", flush=True)
            subprocess.run([*srkit, "train", str(config), "--out", str(out), "--resume"],
                           check=True)  # fmt: skip
    if args.only == "train":
        return
    from srkit.faces.evaluate import run_faces_eval

    models = ["bicubic"] + [str(base / n / f"{n}.safetensors") for n, _p, _i in rows]
    result = run_faces_eval(models, args.scale, metrics=["lpips"], json_path=base / "table.json")
    result["cpu"] = cpu_name()
    result["threads"] = os.cpu_count()
    (base / "table.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{cpu_name()}, x{args.scale}, lfw pairsDevTest")
    print(
        "| model | id distance | cosine | verif @0.6 | verif best | Y-PSNR | SSIM | "
        "landmark NME | LPIPS | ms/face |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in result["results"]:
        print(
            f"| {Path(row['model']).stem} | {row['id_distance']:.4f} | {row['id_cosine']:.4f} | "
            f"{100 * row['verif_acc_06']:.1f}% | {100 * row['verif_acc_best']:.1f}% | "
            f"{row['psnr']:.2f} | {row['ssim']:.4f} | {row['landmark_nme']:.4f} | "
            f"{row['lpips']:.4f} | {row['ms_per_face']:.2f} |"
        )


if __name__ == "__main__":
    main()
