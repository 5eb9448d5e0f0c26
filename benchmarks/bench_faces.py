"""Face-SR evaluation speed: cold (detect + align + embed every HR face) vs warm (cached).

    nice -n 10 .venv/bin/python benchmarks/bench_faces.py                 # pairs.txt, 6000 pairs
    nice -n 10 .venv/bin/python benchmarks/bench_faces.py --pairs pairsDevTest.txt --scales 8 4

The cold run uses a fresh cache directory (``--cache``, default a temporary one) so that nothing
is reused; the warm run then scores the bicubic model with that cache in place, which is what a
user scoring many models pays per model. Target (issue 8): warm <= 60 s for the 6000 pairs of
pairs.txt on 2 CPU cores. Figures are printed as a table and written to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path


def _cpu_seconds() -> float:
    """CPU time of this process and its (finished) worker processes."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# Issue 8's acceptance figures, measured with dlib directly (HR = dlib's 128x128 chip):
# (acc at 0.6, best acc, mean SR-HR distance); srkit must agree within 2 points and 0.03.
REFERENCE = {
    ("lfw-pairsDevTest", 8): (0.817, 0.901, 0.509),
    ("lfw-pairsDevTest", 4): (0.968, None, 0.253),
}


def _check(dataset: str, scale: int, at: float, best: float, dist: float) -> str:
    ref = REFERENCE.get((dataset, scale))
    if ref is None:
        return ""
    ok = abs(at - ref[0]) <= 0.02 and abs(dist - ref[2]) <= 0.03
    ok = ok and (ref[1] is None or abs(best - ref[1]) <= 0.02)
    shown = "/".join("-" if v is None else f"{v:g}" for v in ref)
    return f"  reference {shown}: {'ok' if ok else 'OUT OF TOLERANCE'}"


def _load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=None, help="LFW zip (default: $SRKIT_DATA/faces/lfw/...)")
    ap.add_argument("--pairs", default="pairs.txt", help="pairs list (name in the LFW folder)")
    ap.add_argument("--model", default="bicubic")
    ap.add_argument("--scales", type=int, nargs="+", default=[8])
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--cache", default=None, help="cache dir (default: a fresh temporary one)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    tmp = None
    if args.cache is None:
        tmp = tempfile.TemporaryDirectory(prefix="srkit-bench-faces-")
        args.cache = tmp.name
    os.environ["SRKIT_CACHE"] = args.cache

    import torch

    from srkit.faces.embed import get_embedder
    from srkit.faces.evaluate import face_evaluation, lfw_faceset, verify
    from srkit.faces.lfw import default_lfw_zip
    from srkit.models import resolve_model

    data = Path(args.data) if args.data else default_lfw_zip()
    pairs = Path(args.pairs)
    if not pairs.is_file():
        pairs = data.parent / args.pairs
    faceset = lfw_faceset(data, pairs)
    emb = get_embedder()
    rows = []

    def evaluation(scale: int):
        models = [(scale, resolve_model(args.model, scale))]
        return face_evaluation(models, emb, faceset, workers=args.workers)

    def scored(prep, ev):
        (result,) = ev.score(prep)
        return result.summary["verif_acc_06"], result.summary["verif_acc_best"], result

    t0, c0, l0 = time.perf_counter(), _cpu_seconds(), _load()
    first = evaluation(args.scales[0])
    prep = first.prepare(faceset)
    cold_prepare = time.perf_counter() - t0
    cold = not prep.from_cache  # --cache pointing at a warm cache: warm rows only
    hr_emb = prep.extra("hr_embedding")
    hr_at, hr_best, _ = verify(prep.index(), hr_emb, hr_emb, faceset.pairs, emb)

    for i, scale in enumerate(args.scales):
        if i == 0 and cold:
            at, best, result = scored(prep, first)
            wall, cpu_s = time.perf_counter() - t0, _cpu_seconds() - c0
            rows.append(("cold", scale, wall, cpu_s, max(l0, _load()), at, best, result))
        # warm: what a new process scoring a model pays: load the cache, score, verify
        t2, c2, l2 = time.perf_counter(), _cpu_seconds(), _load()
        ev = evaluation(scale)
        warm_prep = ev.prepare(faceset)
        assert warm_prep.from_cache
        at, best, result = scored(warm_prep, ev)
        wall, cpu_s = time.perf_counter() - t2, _cpu_seconds() - c2
        rows.append(("warm", scale, wall, cpu_s, max(l2, _load()), at, best, result))

    from srkit.common.machine import cpu_name

    cpu = f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}"
    print(
        f"\nfaces eval benchmark: {faceset.name}, {len(faceset.pairs)} pairs, "
        f"{len(prep)} images, model {args.model}; {cpu}"
    )
    if cold:
        print(f"HR stage (detect + landmarks + align + embed, cold): {cold_prepare:.1f} s")
    print(f"HR-HR verification {100 * hr_at:.1f}% at 0.6, {100 * hr_best:.1f}% best")
    print(
        "cpu s: CPU time of all processes (cpu s / 2 ~ wall time on 2 idle cores); "
        "load: 1-min load average (other work on the machine stretches the wall time)"
    )
    print(
        f"{'run':<5} {'scale':>5} {'wall s':>7} {'cpu s':>7} {'load':>5} {'acc@0.6':>8} "
        f"{'acc best':>8} {'id dist':>8} {'PSNR':>6}"
    )
    out = []
    for kind, scale, sec, cpu_s, load, at, best, result in rows:
        distance, psnr = result.values("id_distance").mean(), result.values("psnr").mean()
        print(
            f"{kind:<5} {scale:>5} {sec:>7.1f} {cpu_s:>7.1f} {load:>5.1f} {100 * at:>7.1f}% "
            f"{100 * best:>7.1f}% {distance:>8.4f} {psnr:>6.2f}"
            + _check(faceset.name, scale, at, best, float(distance))
        )
        out.append(
            {
                "run": kind,
                "scale": scale,
                "seconds": round(sec, 2),
                "cpu_seconds": round(cpu_s, 2),
                "load_average": round(load, 2),
                "verif_acc_06": at,
                "verif_acc_best": best,
                "id_distance": float(distance),
                "psnr": float(psnr),
            }
        )
    if args.json:
        summary = {
            "cpu": cpu,
            "dataset": faceset.name,
            "hr_stage_seconds": cold_prepare if cold else None,
            "rows": out,
        }
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
