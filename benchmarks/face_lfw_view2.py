"""Face models on LFW View 2 (``pairs.txt``, 6000 pairs, 10-fold), all pairs and unseen people.

    PYTHONPATH=src python benchmarks/face_lfw_view2.py --scale 8 --model bicubic --model face_x8

``pairs.txt`` covers 4,281 people, 2,985 of whom are in ``peopleDevTrain.txt``, the people srkit's
face models train on; so besides the 10-fold figures on all 6000 pairs this prints verification
on the pairs neither of whose people is in ``peopleDevTrain.txt`` (still 10-fold: those pairs keep
their folds). Needs ``SRKIT_DATA`` (LFW); uses the ``srkit faces eval``
cache (the first run detects and embeds ~7,700 HR faces).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from srkit.common.machine import cpu_name
from srkit.faces.embed import get_embedder
from srkit.faces.evaluate import face_evaluation, lfw_faceset, verify
from srkit.faces.lfw import LFW, read_people
from srkit.faces.trainset import unseen_pairs
from srkit.models import resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=8, choices=(4, 8))
    parser.add_argument("--model", action="append", required=True)
    args = parser.parse_args()
    lfw = LFW()
    faceset = lfw_faceset(pairs="pairs.txt")
    trained = {name for name, _n, _f in read_people(lfw.lists_dir / "peopleDevTrain.txt")}
    unseen = unseen_pairs(faceset.pairs, trained)
    embedder = get_embedder()
    models = [(args.scale, resolve_model(m, args.scale)) for m in args.model]
    evaluation = face_evaluation(models, embedder, faceset)
    start = time.perf_counter()
    prepared = evaluation.prepare(faceset)
    print(f"{cpu_name()}: {len(prepared)} HR faces ({time.perf_counter() - start:.0f} s)")
    index = prepared.index()
    hr = prepared.extra("hr_embedding")
    at, best, _ = verify(index, hr, hr, faceset.pairs, embedder)
    print(f"HR-HR: {100 * at:.2f}% at 0.6, {100 * best:.2f}% best (10-fold)")
    print(f"pairs of people not in peopleDevTrain: {len(unseen)} of {len(faceset.pairs)}")
    print("| model | id distance | verif @0.6 (6000) | 10-fold best (6000) "
          f"| verif @0.6 (unseen {len(unseen)}) | best (unseen) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for result in evaluation.score(prepared):
        names = {n: i for i, n in enumerate(result.names)}
        sr = result.kept_array("sr_embedding")
        ref = result.kept_array("hr_embedding")
        u_at, u_best, _ = verify(names, ref, sr, unseen, embedder)
        print(
            f"| {result.model} | {np.mean(result.values('id_distance')):.4f} "
            f"| {100 * result.summary['verif_acc_06']:.2f}% "
            f"| {100 * result.summary['verif_acc_best']:.2f}% "
            f"| {100 * u_at:.2f}% | {100 * u_best:.2f}% |"
        )


if __name__ == "__main__":
    main()
