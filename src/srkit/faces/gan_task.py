"""``task: face_gan``: face SR against a discriminator (the adversarial half of PFSRNet).

The face task's data, losses, validation and export (:mod:`srkit.faces.task`: aligned 128 x 128
LFW faces of ``peopleDevTrain.txt``, pixel / identity / attention / heatmap terms, identity
distance at each validation, a ``face`` model) with the GAN task's discriminator step
(:mod:`srkit.train.tasks.gan`: ``kind`` vanilla, lsgan, hinge, wgan_gp or ragan, ``d_steps``,
``d_warmup``, separate optimizers, EMA of the generator). The discriminator reads the whole
128 x 128 faces. Its options and the face options share one section::

    name: face_x8_gan
    task: face_gan
    arch: repan_face
    scale: 8
    init: {model: face_x8}
    data: {train: ["${SRKIT_DATA}/faces/lfw/lfw-deepfunneled.zip"], batch_size: 16}
    train: {iters: 1000, ema: 0.999}
    optimizers: {g: {lr: 1.0e-4}, d: {lr: 1.0e-4}}
    losses:
      g:
        - {name: l1, weight: 10}
        - {name: identity, weight: 5}
    face_gan:
      discriminator: {arch: patchgan, options: {features: 64, layers: 3}}
      kind: wgan_gp            # PFSRNet's
      adversarial_weight: 0.01
      val_people: 100
      select: identity

Progressive training (``progressive``) is the face task's alone: a stage-wise discriminator is
not built here.
"""

from __future__ import annotations

from dataclasses import dataclass

from srkit.faces.task import FaceTask
from srkit.train.tasks.gan import GanTask, check_discriminator

__all__ = ["FaceGanTask"]


class FaceGanTask(FaceTask, GanTask):
    name = "face_gan"
    purpose = "face"

    @dataclass
    class Options(FaceTask.Options, GanTask.Options):
        def __post_init__(self) -> None:
            FaceTask.Options.__post_init__(self)
            GanTask.Options.__post_init__(self)
            if self.progressive is not None:
                raise ValueError("face_gan: progressive training is task: face's (no GAN)")

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)  # the face task's checks, with this task's networks
        if "d" in config.losses:
            raise ValueError(
                "losses.d: the discriminator's loss is face_gan.kind; losses.g holds the "
                "generator's other terms"
            )
        check_discriminator(config.task_options.discriminator, 128,
                            "face_gan.discriminator", "aligned HR faces")  # fmt: skip
