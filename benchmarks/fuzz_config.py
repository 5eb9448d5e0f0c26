"""Fuzz srkit's YAML configs: training stages (``srkit.train.experiment.load_experiment``, with
a ``--set`` override), recipes (``srkit.train.recipe.load_recipe``) and degradation files
(``Degradation.from_yaml``, then applied to a tiny image, since a config that loads must also
run).

The first input byte picks the kind: ``experiment``, ``override`` (the first line is a ``--set``
assignment, the rest the experiment YAML), ``degradation`` or ``recipe``. Seeds: two
experiments, the recipes under ``recipes/``, and degradation pipelines using every step type.
Clean errors: ``ConfigError``. Coverage: srkit's code and PyYAML's.

    python benchmarks/fuzz_config.py --seconds 180
"""

from __future__ import annotations

import sys
from pathlib import Path

import _fuzz

KINDS = ("experiment", "override", "degradation", "recipe")
ROOT = Path(__file__).resolve().parents[1]

EXPERIMENTS = [
    b"""name: espcn_x3
arch: espcn
scale: 3
seed: 0
data:
  train: ["${SRKIT_SET5}"]
  lr_patch: 17
  batch_size: 32
  workers: 1
  rescale: [1.0, 0.9]
val:
  data: ["${SRKIT_SET5}"]
  every: 2000
train:
  iters: 20000
  checkpoint_every: 2000
optimizers:
  g:
    name: adam
    lr: 1.0e-3
    betas: [0.9, 0.99]
    schedule: {name: multistep, milestones: [16000, 19000], gamma: 0.3}
losses:
  g:
    - {name: l2, weight: 1.0}
supervised: {loss_crop: 2}
""",
    b"""name: tiny
arch: edsr_baseline
arch_options: {blocks: 2, features: 16}
scale: 2
data:
  train: ["${SRKIT_SET5}/*.png"]
  degradation: {steps: [{type: gaussian_blur, sigma: 1.0}, {type: resize}]}
train:
  iters: 100
  cut: {at: 50, iters: 80}
  grad_clip: 0.5
  ema: 0.999
  precision: bf16
  device: cpu
optimizers:
  g: {name: sgd, lr: 0.1, momentum: 0.9, weight_decay: 1e-4,
      schedule: {name: cosine, warmup: 10, min_lr: 1e-6}}
teacher: {model: "${SRKIT_SET5}"}
losses:
  g: [{name: l1, weight: 0.5}, {name: l1, weight: 0.5, target: teacher, channels: y}]
""",
]
DEGRADATIONS = [
    b"steps:\n  - {type: resize, method: bicubic}\n",
    b"order: random\nquantize: false\nsteps:\n"
    b"  - {type: gaussian_blur, sigma: [0.2, 2.0], anisotropic: true}\n"
    b"  - {type: resize, method: opencv_bicubic}\n"
    b"  - {type: gaussian_noise, sigma: [1, 10], gray: true}\n"
    b"  - {type: jpeg, quality: [30, 90]}\n",
    b"steps:\n  - {type: motion_blur}\n  - {type: poisson_noise, peak: 100}\n",
]


def make_target():
    import torch

    from srkit.config import ConfigError
    from srkit.data.degrade import Degradation
    from srkit.train.experiment import load_experiment
    from srkit.train.recipe import load_recipe

    hr = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    def target(data: bytes, folder: Path) -> None:
        if not data:
            return
        kind, body = KINDS[data[0] % len(KINDS)], data[1:]
        path = folder / "config.yaml"
        if kind == "degradation":
            path.write_bytes(body)
            Degradation.from_yaml(path)(hr, 2, rng=0)
        elif kind == "recipe":
            path.write_bytes(body)
            load_recipe(path)
        elif kind == "override":
            line, _, rest = body.partition(b"\n")
            path.write_bytes(rest)
            load_experiment(path, overrides=[line.decode("utf-8", "replace")])
        else:
            path.write_bytes(body)
            load_experiment(path)

    return target, (ConfigError,)


def seeds() -> list[bytes]:
    experiments = list(EXPERIMENTS)
    recipes = [p.read_bytes() for p in sorted((ROOT / "recipes").glob("*.yaml"))]
    out = [bytes([KINDS.index("experiment")]) + e for e in experiments]
    out += [bytes([KINDS.index("recipe")]) + r for r in recipes]
    out += [bytes([KINDS.index("override")]) + b"train.iters=10\n" + e for e in experiments[:3]]
    out += [bytes([KINDS.index("override")]) + b"data.batch_size=[1, 2]\n" + experiments[0]]
    out += [bytes([KINDS.index("degradation")]) + d for d in DEGRADATIONS]
    return out


if __name__ == "__main__":
    instrument = ("srkit", "yaml")
    sys.exit(
        _fuzz.main("fuzz_config", make_target, seeds, instrument=instrument, description=__doc__)
    )
