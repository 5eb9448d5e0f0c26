"""Rebuild a shipped model from nothing with its recipe, and compare it with the shipped file.

Runs ``recipes/<model>.yaml`` (every stage it needs, other recipes' stages included) into
``--runs`` exactly as ``srkit train`` does (a finished stage is skipped, a killed one resumes, so
the script can be rerun after an interruption), then scores the result and the shipped weights
on the bundled Set5 in both conventions and prints the time of each stage.

Exit status 1 when the rebuilt model's modern-convention PSNR is more than ``--tolerance`` dB
(default 0.05) from the shipped one's.

Usage:
  OMP_NUM_THREADS=1 python benchmarks/bench_recipe_rebuild.py espcn_x4 [--runs runs/recipes]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from srkit.bench.runner import run_benchmark
from srkit.common.machine import machine_summary
from srkit.data.builtin import bundled_set5
from srkit.train.recipe import RecipeRunner
from srkit.zoo import MODELS_DIR

REPO = Path(__file__).resolve().parents[1]


def set5(path: Path, scale: int) -> dict[str, tuple[float, float]]:
    figures = {}
    for convention in ("modern", "legacy"):
        (result,) = run_benchmark(str(path), [str(bundled_set5())], [scale], convention=convention)
        figures[convention] = (result.psnr, result.ssim)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a shipped model with a recipe (recipes/<model>.yaml)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "recipes")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    recipe_path = REPO / "recipes" / f"{args.model}.yaml"
    runner = RecipeRunner(args.runs, show_progress=not args.no_progress)
    start = time.perf_counter()
    output = runner.run(recipe_path)
    wall = time.perf_counter() - start

    recipe = runner.recipe(recipe_path)
    print(f"\n{args.model}: rebuilt with recipes/{args.model}.yaml ({machine_summary()['cpu']})")
    print("| stage | recipe | scale | iterations | seconds |")
    print("|---|---|---|---|---|")
    total = 0.0
    for owner, stage in runner.chain(recipe_path):
        record = runner.record(owner, stage)
        total += record["seconds"]
        print(f"| {stage.name} | {owner.model} | x{stage.config.scale} | "
              f"{record['iterations']} | {record['seconds']:.0f} |")  # fmt: skip
    print(f"training: {total / 3600:.2f} h in all stages; this invocation: {wall / 60:.1f} min")

    scale = recipe.stages[-1].config.scale
    rebuilt = set5(output.with_suffix(".json"), scale)
    shipped = set5(MODELS_DIR / f"{args.model}.json", scale)
    print("\n| Set5 | modern PSNR / SSIM | legacy PSNR / SSIM |")
    print("|---|---|---|")
    for label, figures in (("shipped", shipped), ("rebuilt", rebuilt)):
        modern, legacy = figures["modern"], figures["legacy"]
        print(
            f"| {label} | {modern[0]:.3f} / {modern[1]:.4f} | {legacy[0]:.3f} / {legacy[1]:.4f} |"
        )
    difference = rebuilt["modern"][0] - shipped["modern"][0]
    verdict = "within" if abs(difference) <= args.tolerance else "OUTSIDE"
    print(f"\nrebuilt - shipped: {difference:+.3f} dB ({verdict} {args.tolerance} dB)")
    return 0 if abs(difference) <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
