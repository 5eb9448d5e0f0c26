"""Landmark heatmap networks against dlib's 68 points on faces no face model trains on.

    SRKIT_DATA=../shared/data PYTHONPATH=src python benchmarks/face_landmarks_nme.py

On the aligned HR crops of ``pairsDevTest.txt`` (1,549 faces; the ``srkit faces eval`` cache),
dlib's 68 points are the reference; each network's points (arg-max of its heatmaps) are scored
by the normalised mean error (NME: mean point distance over the outer-eye-corner distance), on
the HR crops and on their bicubic x4 and x8 reconstructions. Rows: the mean shape of the
training faces (a network that ignored the image would score this), srkit's ``face_landmarks``
and, when ``SRKIT_WEIGHTS`` holds it, PFSRNet's compressed FAN (the authors' file) on the HR
crops, its input in [-1, 1] and in [0, 1], read at the full crop and at half and a quarter of it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from srkit.common.machine import cpu_name
from srkit.data.builtin import official_weights_dir
from srkit.faces.detect import FaceDetector, crop_landmarks68
from srkit.faces.embed import get_embedder
from srkit.faces.evaluate import face_evaluation, lfw_faceset
from srkit.faces.heatmapnet import heatmap_points, landmark_nme, load_heatmap_net
from srkit.faces.landmark_task import soften
from srkit.faces.trainset import load_trainset


def _nme(net, images: torch.Tensor, reference: torch.Tensor, size: int | None = None) -> float:
    points = []
    with torch.inference_mode():
        for i in range(0, len(images), 64):
            x = images[i : i + 64]
            if size is not None:
                x = F.interpolate(x, size=(size, size), mode="area")
            points.append(heatmap_points(net(x), images.shape[-1]))
    return float(landmark_nme(torch.cat(points), reference).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="face_landmarks", help="srkit heatmap model")
    parser.add_argument("--faces", type=int, default=0, help="at most this many (0: all)")
    args = parser.parse_args()
    faceset = lfw_faceset(pairs="pairsDevTest.txt")
    prepared = face_evaluation([], get_embedder(), faceset).prepare(faceset)
    hr_u8 = np.asarray(prepared.hr())
    if args.faces:
        hr_u8 = hr_u8[: args.faces]
    reference = torch.from_numpy(
        crop_landmarks68(FaceDetector(68, 0, select="center"), hr_u8)
    ).float()
    hr = torch.from_numpy(np.array(hr_u8)).float() / 255.0
    inputs = {"HR": hr, "bicubic x4": soften(hr, 4), "bicubic x8": soften(hr, 8)}
    print(f"{cpu_name()}: {len(hr)} pairsDevTest faces, dlib's 68 points as the reference")
    print("| network | " + " | ".join(f"NME {k}" for k in inputs) + " | ms / face |")
    print("|---|" + "---:|" * (len(inputs) + 1))
    train_points = torch.from_numpy(load_trainset(progress=False).landmarks68).float()
    mean = train_points.mean(0, keepdim=True).expand_as(reference)
    value = float(landmark_nme(mean, reference).mean())
    print("| mean training shape | " + " | ".join(f"{value:.4f}" for _ in inputs) + " | - |")
    net, _manifest = load_heatmap_net(args.model)
    start = time.perf_counter()
    row = [_nme(net, x, reference) for x in inputs.values()]
    ms = 1000 * (time.perf_counter() - start) / (len(inputs) * len(hr))
    print(f"| {args.model} | " + " | ".join(f"{v:.4f}" for v in row) + f" | {ms:.2f} |")
    fan_file = official_weights_dir() / "pfsrnet_fan" / "compressed_model_011000.pth"
    if not fan_file.is_file():
        print(f"(PFSRNet's FAN not found at {fan_file}: set SRKIT_WEIGHTS)")
        return
    from srkit.faces.fan import load_fan_squeeze

    for normalize, label in ((True, "[-1, 1]"), (False, "[0, 1]")):
        fan = load_fan_squeeze(fan_file, normalize=normalize)
        for size in (128, 64, 32):  # the HR only: at 128 px it costs 5.9 GMACs a face
            start = time.perf_counter()
            value = _nme(fan, hr, reference, size)
            ms = 1000 * (time.perf_counter() - start) / len(hr)
            print(f"| PFSRNet FAN, {label}, at {size} px | {value:.4f} | - | - | {ms:.2f} |")


if __name__ == "__main__":
    main()
