"""``srkit faces eval``: how well a super-resolved face keeps its identity.

Protocol (``docs/faces.md``):

1. HR: each image's face is detected (dlib HOG; the data set's fallback box when none is found,
   e.g. the centre of an LFW image), its 5 landmarks predicted, and the 128x128 crop aligned to
   the ``facesr128`` template (dlib's face chip, padding 0.25) by a cp2tform 'similarity' fit;
   the crop is rounded to uint8. Its landmarks in crop coordinates are the transformed ones.
2. LR: MATLAB bicubic of the HR (x4: 32x32, x8: 16x16) rounded to uint8, or a
   :class:`~srkit.faces.degrade.FaceDegradation` (a :mod:`srkit.data.degrade` pipeline).
3. SR: the model's output (scaled by 255 in float32), clamped and rounded to uint8.
4. Per image: identity distance (Euclidean, dlib's metric) and cosine between the embeddings of
   SR and HR, both taken with the HR's landmarks; PSNR and SSIM on Y (BT.601), whole crop.
5. With a pairs list: verification accuracy with the first image of each pair in HR as the
   gallery and the second, super-resolved from its LR, as the probe, at the embedder's threshold
   (dlib: 0.6) and at the best threshold (10-fold cross-validated with ``pairs.txt``; the best
   threshold on the set itself for a one-fold list such as ``pairsDevTest.txt``).

It runs on the evaluation loop of ``srkit bench`` (:class:`srkit.bench.engine.Evaluation`) with
two plugins: :class:`FaceAlignment` (the pair step of 1) and :class:`IdentityMetric` (4 and 5).
Everything that does not depend on the SR model (detections, landmarks, HR crops, HR embeddings)
is computed once per data set and protocol and cached on disk under ``$SRKIT_CACHE/faces``.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from srkit.bench.engine import (
    DegradationStep,
    Evaluation,
    Metric,
    PairStep,
    Prepared,
    PsnrSsim,
    Result,
    Sample,
    SkipImage,
)
from srkit.bench.plugins import ImageMetrics
from srkit.common.files import AtomicFile, write_text_atomic
from srkit.common.progress import progress_bar
from srkit.faces.align import align, get_template, landmarks68_to_5, transform_points
from srkit.faces.degrade import FaceDegradation
from srkit.faces.detect import FaceDetector, FaceNotFoundError, crop_landmarks68
from srkit.faces.embed import get_embedder
from srkit.faces.facesets import FaceSet, folder_faceset, lfw_faceset, looks_like_lfw
from srkit.faces.lfw import Pair
from srkit.faces.paths import cache_dir
from srkit.image.io import ImageReadError
from srkit.image.resize import quantize_uint8
from srkit.models import resolve_model

__all__ = [
    "FaceAlignment",
    "FaceSet",
    "IdentityMetric",
    "Protocol",
    "face_evaluation",
    "folder_faceset",
    "lfw_faceset",
    "prepare",
    "run_faces_eval",
    "verification_accuracy",
    "verify",
]

PROTOCOL_VERSION = 2
CHUNK = 32  # faces prepared, and super-resolved, together


@dataclass(frozen=True)
class Protocol:
    """The model-independent half of the protocol (part of the cache key)."""

    template: str = "facesr128"
    upsample: int = 1
    landmark_sets: tuple[str, ...] = ("dlib5",)

    def needs_68(self) -> bool:
        return any(s != "dlib5" for s in self.landmark_sets)


# ----------------------------------------------------------------------------- plugins


class FaceAlignment(PairStep):
    """Pair step: detect the face, predict its landmarks, crop the HR aligned to the template.

    Extras of each sample: ``detected`` (False: the fallback box was used) and
    ``landmarks_<set>`` ``(5, 2)`` in crop coordinates for each landmark set of the protocol.
    An unreadable image or one without a face (and no fallback box) is skipped.
    """

    chunk = CHUNK

    def __init__(self, protocol: Protocol, fallback_box=None) -> None:
        self.protocol = protocol
        self.fallback_box = None if fallback_box is None else tuple(fallback_box)
        self._local = threading.local()  # dlib's detectors, one per worker thread

    def fingerprint(self) -> str:
        payload = [PROTOCOL_VERSION, asdict(self.protocol), self.fallback_box]
        return json.dumps(payload, sort_keys=True)

    def _detectors(self):
        if not hasattr(self._local, "det5"):
            upsample = self.protocol.upsample
            self._local.det5 = FaceDetector(5, upsample, select="center")
            self._local.pred68 = (
                FaceDetector(68, upsample, select="center") if self.protocol.needs_68() else None
            )
        return self._local.det5, self._local.pred68

    def prepare(self, source: FaceSet, names: Sequence[str]) -> list[Sample | Exception]:
        det5, pred68 = self._detectors()
        template = get_template(self.protocol.template)
        out: list[Sample | Exception] = []
        for key in names:
            try:
                image = source.reader(key)
                found = det5(image, key, fallback_box=self.fallback_box)
            except (ImageReadError, FaceNotFoundError) as error:
                out.append(SkipImage(str(error)))
                continue
            points = {"dlib5": found.landmarks}
            if pred68 is not None:
                p68 = pred68.landmarks_in(image, found.box, key)
                points["eyes_nose_mouth"] = landmarks68_to_5(p68, "eyes_nose_mouth")
            x = torch.from_numpy(image).permute(2, 0, 1)[None].double()
            crop, m = align(x, points[template.landmarks], template)
            extras = {
                f"landmarks_{s}": transform_points(points[s], m[0]).numpy()
                for s in self.protocol.landmark_sets
            }
            extras["detected"] = np.bool_(found.detected)
            out.append(Sample(key, quantize_uint8(crop[0]), extras=extras))
        return out


class IdentityMetric(Metric):
    """Identity distance and cosine of SR vs HR embeddings (both with the HR's landmarks).

    Reference: the HR embedding (cached). Kept: both embeddings. Summary: verification accuracy
    on ``pairs`` (``verif_acc_06``: at the embedder's threshold, ``verif_acc_best``).
    """

    columns = ("id_distance", "id_cosine")

    def __init__(self, embedder, pairs: list[Pair] | None = None) -> None:
        self.embedder = embedder
        self.pairs = pairs

    def fingerprint(self) -> str:
        return self.embedder.fingerprint()

    def _embed(self, images: torch.Tensor, samples: Sequence[Sample]) -> np.ndarray:
        key = f"landmarks_{self.embedder.landmarks}"
        landmarks = torch.from_numpy(np.stack([s.extras[key] for s in samples]))
        with torch.inference_mode():
            return self.embedder(images.float() / 255.0, landmarks).float().numpy()

    def reference(self, hr, samples):
        return {"hr_embedding": self._embed(hr, samples)}

    def score(self, sr, hr, samples, scale):
        e_sr = self._embed(sr, samples)
        e_hr = np.stack([s.extras["hr_embedding"] for s in samples])
        norms = np.linalg.norm(e_sr, axis=1) * np.linalg.norm(e_hr, axis=1)
        return {
            "id_distance": np.linalg.norm(e_sr - e_hr, axis=1),
            "id_cosine": (e_sr * e_hr).sum(1) / norms,
            "sr_embedding": e_sr,
            "hr_embedding": e_hr,
        }

    def summarize(self, result: Result) -> dict:
        if not self.pairs:
            return {"verif_acc_06": None, "verif_acc_best": None, "pairs_skipped": 0}
        index = {name: i for i, name in enumerate(result.names)}
        at, best, skipped = verify(
            index,
            result.kept_array("hr_embedding"),
            result.kept_array("sr_embedding"),
            self.pairs,
            self.embedder,
        )
        return {"verif_acc_06": at, "verif_acc_best": best, "pairs_skipped": skipped}


class LandmarkMetric(Metric):
    """68-point landmark error of SR vs HR: dlib's 68-point shape predictor (a different model
    from the identity network) run on both crops in the same box, the template's face square
    (``[h/6, 5h/6]`` on each axis for the 0.25-padded crop); the mean point distance over the
    HR's outer-eye-corner distance (points 36 and 45), the usual normalised mean error (NME).

    A model that lowers the identity distance while its landmarks drift is pleasing the identity
    network rather than restoring the face: this is the guard.
    """

    columns = ("landmark_nme",)

    def __init__(self) -> None:
        self._local = threading.local()

    def fingerprint(self) -> str:
        return "dlib68-nme:box1/6-5/6:v1"

    def _points(self, images: torch.Tensor) -> np.ndarray:
        if not hasattr(self._local, "predictor"):
            self._local.predictor = FaceDetector(68, 0, select="center")
        return crop_landmarks68(self._local.predictor, images.numpy())

    def reference(self, hr, samples):
        return {"hr_landmarks68": self._points(hr)}

    def score(self, sr, hr, samples, scale):
        ref = np.stack([s.extras["hr_landmarks68"] for s in samples])
        got = self._points(sr)
        eyes = np.linalg.norm(ref[:, 36] - ref[:, 45], axis=1)
        error = np.linalg.norm(got - ref, axis=2).mean(axis=1)
        return {"landmark_nme": error / np.maximum(eyes, 1e-6)}


# ----------------------------------------------------------------------------- verification


def _best_threshold(d: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Threshold maximising accuracy of ``d < t`` (midpoints between sorted distances)."""
    order = np.argsort(d)
    ds, ys = d[order], same[order]
    # predicting "same" for the first k: correct = same in first k + different after k
    tp = np.concatenate([[0], np.cumsum(ys)])
    tn_after = (~ys).sum() - np.concatenate([[0], np.cumsum(~ys)])
    acc = (tp + tn_after) / len(d)
    k = int(np.argmax(acc))
    lo = ds[k - 1] if k > 0 else ds[0] - 1e-6
    hi = ds[k] if k < len(ds) else ds[-1] + 1e-6
    return float((lo + hi) / 2), float(acc[k])


def verification_accuracy(
    distances: np.ndarray, same: np.ndarray, folds: np.ndarray, threshold: float | None
) -> tuple[float | None, float]:
    """Accuracy at ``threshold`` and at the best threshold (k-fold when there are folds)."""
    same = same.astype(bool)
    at = float(((distances < threshold) == same).mean()) if threshold is not None else None
    fold_ids = np.unique(folds)
    if len(fold_ids) < 2:
        return at, _best_threshold(distances, same)[1]
    accs = []
    for f in fold_ids:
        test = folds == f
        t, _ = _best_threshold(distances[~test], same[~test])
        accs.append(float(((distances[test] < t) == same[test]).mean()))
    return at, float(np.mean(accs))


def _distance(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        return 1 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return np.linalg.norm(a - b, axis=1)


def verify(
    index: dict[str, int],
    gallery: np.ndarray,
    probes: np.ndarray,
    pairs: list[Pair],
    embedder,
) -> tuple[float | None, float, int]:
    """(acc at threshold, best acc, skipped pairs): ``gallery`` embedding of the 1st image of a
    pair, ``probes`` of the 2nd (rows by ``index``); pairs with a skipped image are left out."""
    keep = [p for p in pairs if p.first in index and p.second in index]
    first = np.array([index[p.first] for p in keep], dtype=np.int64)
    second = np.array([index[p.second] for p in keep], dtype=np.int64)
    same = np.array([p.same for p in keep])
    folds = np.array([p.fold for p in keep])
    d = _distance(gallery[first], probes[second], embedder.metric)
    at, best = verification_accuracy(d, same, folds, embedder.threshold)
    return at, best, len(pairs) - len(keep)


# ----------------------------------------------------------------------------- entry points


def face_evaluation(
    models: Sequence[tuple[int, object]],
    embedder,
    faceset: FaceSet,
    *,
    degradation: FaceDegradation | None = None,
    protocol: Protocol | None = None,
    workers: int | None = None,
    use_cache: bool = True,
    on_prepared: Callable[[int], None] | None = None,
    on_scored: Callable[[int], None] | None = None,
    landmarks68: bool = False,
    extra_metrics: Sequence | None = None,
) -> Evaluation:
    """The face protocol as an :class:`~srkit.bench.engine.Evaluation` of ``(scale, model)``.

    ``landmarks68`` adds :class:`LandmarkMetric`; ``extra_metrics`` are
    :class:`~srkit.metrics.select.ImageMetric` s (LPIPS, ...) on the whole crop.
    """
    protocol = protocol or Protocol()
    sets = tuple(dict.fromkeys(("dlib5", embedder.landmarks, *protocol.landmark_sets)))
    protocol = Protocol(protocol.template, protocol.upsample, sets)
    h, w = get_template(protocol.template).size
    for scale, _model in models:
        if h % scale or w % scale:
            raise ValueError(f"HR crops {h}x{w} are not divisible by scale {scale}")
    deg = degradation or FaceDegradation()
    metrics = [IdentityMetric(embedder, faceset.pairs), PsnrSsim(border=0)]
    if landmarks68:
        metrics.append(LandmarkMetric())
    if extra_metrics:
        metrics.append(ImageMetrics(extra_metrics, border=0))
    return Evaluation(
        models,
        metrics=metrics,
        degradations=[DegradationStep(deg, None if deg.is_default else deg.describe())],
        pair_step=FaceAlignment(protocol, faceset.fallback_box),
        batch=CHUNK,
        workers=workers,
        skip_bad=True,
        cache_root=cache_dir() / "faces" if use_cache else None,
        float32_output=True,
        on_prepared=on_prepared,
        on_scored=on_scored,
    )


def prepare(
    faceset: FaceSet,
    embedder=None,
    protocol: Protocol | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    landmarks68: bool = True,
) -> Prepared:
    """Detect, align and embed the HR faces of ``faceset`` (or load them from the cache); with
    ``landmarks68`` (as ``run_faces_eval``), their 68-point landmarks too."""
    embedder = embedder if embedder is not None else get_embedder()
    evaluation = face_evaluation(
        [],
        embedder,
        faceset,
        protocol=protocol,
        workers=workers,
        use_cache=use_cache,
        landmarks68=landmarks68,
    )
    return evaluation.prepare(faceset)


def _finite_mean(x: np.ndarray) -> float:
    """Mean of finite values (PSNR is inf for a perfect reconstruction)."""
    x = np.asarray(x, dtype=np.float64)
    f = x[np.isfinite(x)]
    return float(f.mean()) if f.size else float("nan")


def write_csv(path: Path, prepared: Prepared, result: Result) -> None:
    """One row per face (``image, detected, id_distance, id_cosine, psnr, ssim``), then means."""
    detected = prepared.extra("detected")
    columns = ("id_distance", "id_cosine", "psnr", "ssim")
    digits = (6, 6, 4, 6)
    values = [result.values(c) for c in columns]
    with AtomicFile(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "detected", *columns])
        for i, key in enumerate(result.names):
            cells = [f"{v[i]:.{d}f}" for v, d in zip(values, digits, strict=True)]
            w.writerow([key, int(detected[i]), *cells])
        means = [f"{_finite_mean(v):.{d}f}" for v, d in zip(values, digits, strict=True)]
        w.writerow(["mean", f"{detected.mean():.4f}", *means])


@contextmanager
def _progress(enabled: bool, description: str, total: int):
    """A transient progress bar on stderr; yields its ``advance(k)``."""
    with progress_bar(enabled=enabled) as bar:
        task = bar.add_task(description, total=total)
        yield lambda k: bar.advance(task, k)


def run_faces_eval(
    models: Sequence[str],
    scale: int,
    data: str | Path | None = None,
    pairs: str | Path | None = None,
    degradation: FaceDegradation | None = None,
    csv_path: str | Path | None = None,
    json_path: str | Path | None = None,
    embedder: str | None = None,
    workers: int | None = None,
    use_cache: bool = True,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    landmarks68: bool = True,
    metrics: Sequence[str] | None = None,
    backends: Sequence[str] | None = None,
) -> dict:
    """Score SR models on a face data set; returns (and optionally writes) the JSON results.

    Besides the identity figures and PSNR/SSIM: the 68-point landmark error (``landmarks68``),
    the ``metrics`` named (``lpips``, ``lpips_vgg``, ``msssim``, ``niqe``) and each model's time
    per face (one LR face at a time, median of 20 runs after 3 warm-ups, on this CPU's threads).
    ``backends`` (``"openvino/int8"``, ``"torch/bf16"``, ...) scores every model on each
    deployment backend (:mod:`srkit.deploy`; int8 calibrated on the bundled Set5).
    """
    log = log or (lambda _msg: None)
    data_path = Path(data) if data is not None else None
    is_lfw = data_path is None or pairs is not None or looks_like_lfw(data_path)
    faceset = lfw_faceset(data_path, pairs) if is_lfw else folder_faceset(data_path)
    emb = get_embedder(embedder)
    resolved = [(scale, resolve_model(spec, scale)) for spec in models]
    if backends:
        resolved = [(s, on_backend(m, b)) for s, m in resolved for b in backends]
    extra = None
    if metrics:
        from srkit.metrics.select import parse_metrics

        extra = parse_metrics(list(metrics))
    evaluation = face_evaluation(
        resolved,
        emb,
        faceset,
        degradation=degradation,
        workers=workers,
        use_cache=use_cache,
        landmarks68=landmarks68,
        extra_metrics=extra,
    )
    with _progress(progress, "HR faces", len(faceset.keys)) as advance:
        evaluation.on_prepared = advance
        prepared = evaluation.prepare(faceset)
    for key, why in list(prepared.skipped.items())[:20]:
        log(f"skipped {key}: {why}")
    where = f"cache {prepared.path}" if prepared.from_cache else "computed"
    fallback = int((~prepared.extra("detected")).sum())
    log(
        f"{faceset.name}: {len(prepared)} faces ({fallback} on the fallback box, "
        f"{len(prepared.skipped)} failed), HR stage {prepared.seconds:.1f} s ({where})"
    )
    if faceset.pairs:
        hr = prepared.extra("hr_embedding")
        at, best, skipped = verify(prepared.index(), hr, hr, faceset.pairs, emb)
        log(f"HR-HR verification: {_pct(at)} at {emb.threshold}, best {_pct(best)}")
        if skipped:
            log(f"{skipped} of {len(faceset.pairs)} pairs skipped (an image failed, see above)")
    label = ", ".join(f"{m.name} x{s}" for s, m in resolved)
    with _progress(progress, label, len(prepared) * len(resolved)) as advance:
        evaluation.on_scored = advance
        results = evaluation.score(prepared)
    extra_columns = [c for m in evaluation.metrics if m.columns for c in m.columns
                     if c not in ("id_distance", "id_cosine", "psnr", "ssim")]  # fmt: skip
    model_ms = {m.name: time_per_face(m, scale, get_template(Protocol().template).size)
                for _s, m in resolved}  # fmt: skip
    rows = []
    for result in results:
        row = {
            "model": result.model,
            "scale": int(result.scale),
            "dataset": result.dataset,
            "n_images": result.n,
            **{c: _finite_mean(result.values(c)) for c in ("id_distance", "id_cosine")},
            **{c: _finite_mean(result.values(c)) for c in ("psnr", "ssim")},
            "verif_acc_06": result.summary["verif_acc_06"],
            "verif_acc_best": result.summary["verif_acc_best"],
            **{c: _finite_mean(result.values(c)) for c in extra_columns},
            "ms_per_face": round(model_ms[result.model], 3),
            "seconds": round(result.seconds, 3),
        }
        rows.append(row)
        extras = "".join(f", {c} {row[c]:.4f}" for c in extra_columns)
        log(
            f"{row['model']} x{scale}: id distance {row['id_distance']:.4f}, cosine "
            f"{row['id_cosine']:.4f}, PSNR {row['psnr']:.2f}, SSIM {row['ssim']:.4f}{extras}, "
            f"verification {_pct(row['verif_acc_06'])} at {emb.threshold} / "
            f"{_pct(row['verif_acc_best'])} best, {row['ms_per_face']:.2f} ms/face "
            f"({row['seconds']:.1f} s)"
        )
        if csv_path is not None:
            p = Path(csv_path)
            if len(models) > 1:
                p = p.with_name(f"{p.stem}_{result.model}{p.suffix}")
            write_csv(p, prepared, result)
    out = {"results": rows}
    if json_path is not None:
        write_text_atomic(json_path, json.dumps(out, indent=2) + "\n")
    return out


def on_backend(model, backend: str):
    """``model`` on ``"name/precision"`` (``"torch/fp32"`` is the model itself)."""
    from srkit.deploy import prepare as prepare_backend

    name, _, precision = backend.partition("/")
    return prepare_backend(model, name, precision or "fp32")


def time_per_face(model, scale: int, hr_size: tuple[int, int], runs: int = 20) -> float:
    """Milliseconds of ``model`` on one LR face (median of ``runs`` after 3 warm-ups)."""
    import time

    x = torch.rand(1, 3, hr_size[0] // scale, hr_size[1] // scale)
    times = []
    with torch.inference_mode():
        for i in range(3 + runs):
            start = time.perf_counter()
            model(x)
            if i >= 3:
                times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"
