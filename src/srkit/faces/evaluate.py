"""``srkit faces eval``: how well a super-resolved face keeps its identity.

Protocol (``docs/faces.md``):

1. HR: each image's face is detected (dlib HOG; the data set's fallback box when none is found,
   e.g. the centre of an LFW image), its 5 landmarks predicted, and the 128x128 crop aligned to
   the ``facesr128`` template (dlib's face chip, padding 0.25) by a cp2tform 'similarity' fit;
   the crop is rounded to uint8. Its landmarks in crop coordinates are the transformed ones.
2. LR: MATLAB bicubic of the HR (x4: 32x32, x8: 16x16) rounded to uint8, or a
   :class:`~srkit.faces.degrade.FaceDegradation` (a :mod:`srkit.data.degrade` pipeline).
3. SR: the model's output, clamped and rounded to uint8.
4. Per image: identity distance (Euclidean, dlib's metric) and cosine between the embeddings of
   SR and HR, both taken with the HR's landmarks; PSNR and SSIM on Y (BT.601), whole crop.
5. With a pairs list: verification accuracy with the first image of each pair in HR as the
   gallery and the second, super-resolved from its LR, as the probe, at the embedder's threshold
   (dlib: 0.6) and at the best threshold (10-fold cross-validated with ``pairs.txt``; the best
   threshold on the set itself for a one-fold list such as ``pairsDevTest.txt``).

Everything that does not depend on the SR model (detections, landmarks, HR crops, HR embeddings)
is computed once per data set and protocol and cached on disk under ``$SRKIT_CACHE/faces``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from srkit.common.files import AtomicFile, write_text_atomic
from srkit.common.progress import progress_bar
from srkit.data.sources import open_source
from srkit.faces.align import align, get_template, landmarks68_to_5, transform_points
from srkit.faces.degrade import FaceDegradation
from srkit.faces.detect import FaceDetector, FaceNotFoundError
from srkit.faces.embed import get_embedder
from srkit.faces.lfw import LFW, LFW_FALLBACK_BOX, Pair, pair_keys, read_pairs
from srkit.faces.paths import cache_dir
from srkit.image.color import rgb_uint8_to_y
from srkit.image.io import ImageReadError
from srkit.image.resize import quantize_uint8
from srkit.metrics import psnr, ssim
from srkit.models import resolve_model

__all__ = [
    "FaceSet",
    "Prepared",
    "Protocol",
    "evaluate_model",
    "folder_faceset",
    "lfw_faceset",
    "prepare",
    "run_faces_eval",
    "verification_accuracy",
]

PROTOCOL_VERSION = 1
CHUNK = 32


# ----------------------------------------------------------------------------- data sets


@dataclass
class FaceSet:
    """Images to score: keys, a reader, an identity for cache keys, optional pairs."""

    name: str
    keys: list[str]
    reader: Callable[[str], np.ndarray]
    fingerprint: str
    pairs: list[Pair] | None = None
    fallback_box: tuple[int, int, int, int] | None = None


def _file_identity(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{int(st.st_mtime)}"


def lfw_faceset(data: str | Path | None = None, pairs: str | Path | None = None) -> FaceSet:
    """LFW (zip or folder) scored on a pairs list (default ``pairsDevTest.txt`` next to it)."""
    lfw = LFW(data)
    pairs_path = Path(pairs) if pairs is not None else lfw.lists_dir / "pairsDevTest.txt"
    if not pairs_path.is_file() and not pairs_path.is_absolute():
        pairs_path = lfw.lists_dir / pairs_path  # a list name: look next to the images
    if not pairs_path.is_file():
        raise FileNotFoundError(f"pairs list not found: {pairs_path} (pass --pairs)")
    plist = read_pairs(pairs_path)
    keys = pair_keys(plist)
    missing = [k for k in keys if k not in lfw]
    if missing:
        raise ValueError(
            f"{len(missing)} images of {pairs_path.name} not in {lfw.path}: {missing[:3]}"
        )
    ident = f"{_file_identity(lfw.path) if lfw.path.is_file() else lfw.path.resolve()}|"
    ident += _file_identity(pairs_path)
    return FaceSet(
        name=f"lfw-{pairs_path.stem}",
        keys=keys,
        reader=lfw.read,
        fingerprint=ident,
        pairs=plist,
        fallback_box=LFW_FALLBACK_BOX,
    )


def folder_faceset(data: str | Path, fallback_box=None) -> FaceSet:
    """Any folder or zip of face images (per-image figures only, no pairs)."""
    src = open_source(data, recursive=True)
    keys = list(src.names)
    path = Path(data)
    listing = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
    ident = _file_identity(path) if path.is_file() else f"{path.resolve()}:{listing}"
    if path.is_dir():  # folder contents may change: include sizes and mtimes
        h = hashlib.sha256()
        for k in keys:
            st = (path / k).stat()
            h.update(f"{k}:{st.st_size}:{int(st.st_mtime)}\n".encode())
        ident += ":" + h.hexdigest()[:16]

    def reader(key: str) -> np.ndarray:
        return src.read(key).to_rgb8()

    return FaceSet(src.name, keys, reader, ident, None, fallback_box)


# ----------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class Protocol:
    """The model-independent half of the protocol (part of the cache key)."""

    template: str = "facesr128"
    upsample: int = 1
    landmark_sets: tuple[str, ...] = ("dlib5",)

    def needs_68(self) -> bool:
        return any(s != "dlib5" for s in self.landmark_sets)


@dataclass
class Prepared:
    """Cached model-independent work for one data set + protocol + embedder."""

    keys: list[str]
    hr: np.ndarray  # (N, H, W, 3) uint8
    landmarks: dict[str, np.ndarray]  # set -> (N, 5, 2) float64, crop coordinates
    detected: np.ndarray  # (N,) bool: False = fallback box used
    hr_embeddings: np.ndarray  # (N, D) float32
    failed: dict[str, str] = field(default_factory=dict)  # key -> reason (not in the arrays)
    seconds: float = 0.0
    from_cache: bool = False
    path: Path | None = None

    def index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.keys)}


def cache_key(faceset: FaceSet, protocol: Protocol, embedder) -> str:
    payload = {
        "version": PROTOCOL_VERSION,
        "data": faceset.fingerprint,
        "keys": hashlib.sha256("\n".join(faceset.keys).encode()).hexdigest(),
        "fallback": faceset.fallback_box,
        "protocol": asdict(protocol),
        "embedder": embedder.fingerprint(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


# Worker state (set by the pool initializer; inherited or rebuilt in each process).
_W: dict = {}


def _init_prepare(faceset: FaceSet, protocol: Protocol, embedder_factory) -> None:
    torch.set_num_threads(1)
    _W["faceset"] = faceset
    _W["protocol"] = protocol
    _W["det5"] = FaceDetector(5, protocol.upsample, select="center")
    _W["pred68"] = (
        FaceDetector(68, protocol.upsample, select="center") if protocol.needs_68() else None
    )
    _W["embedder"] = embedder_factory()


def _prepare_chunk(keys: Sequence[str]):
    fs: FaceSet = _W["faceset"]
    protocol: Protocol = _W["protocol"]
    det5 = _W["det5"]
    tmpl = get_template(protocol.template)
    ok, crops, lms, dets, failed = [], [], {s: [] for s in protocol.landmark_sets}, [], {}
    for key in keys:
        try:
            img = fs.reader(key)
            d = det5(img, key, fallback_box=fs.fallback_box)
        except (ImageReadError, FaceNotFoundError) as e:
            failed[key] = str(e)
            continue
        pts = {"dlib5": d.landmarks}
        if _W["pred68"] is not None:
            p68 = _W["pred68"].landmarks_in(img, d.box, key)
            pts["eyes_nose_mouth"] = landmarks68_to_5(p68, "eyes_nose_mouth")
        x = torch.from_numpy(img).permute(2, 0, 1)[None].double()
        crop, m = align(x, pts[tmpl.landmarks], tmpl)
        crops.append(quantize_uint8(crop[0]))
        for s in protocol.landmark_sets:
            lms[s].append(transform_points(pts[s], m[0]).numpy())
        dets.append(d.detected)
        ok.append(key)
    if not ok:
        return ok, None, None, None, None, failed
    hr = torch.stack(crops)
    emb_lm = torch.from_numpy(np.stack(lms[_W["embedder"].landmarks]))
    with torch.no_grad():
        emb = _W["embedder"](hr.float() / 255.0, emb_lm).float().numpy()
    out_lms = {s: np.stack(v) for s, v in lms.items()}
    return ok, hr.permute(0, 2, 3, 1).numpy(), out_lms, np.array(dets), emb, failed


def _pool(workers: int, initializer, initargs) -> ProcessPoolExecutor | None:
    if workers <= 1 or "fork" not in mp.get_all_start_methods():
        threads = torch.get_num_threads()
        initializer(*initargs)  # in this process: keep the caller's thread setting
        torch.set_num_threads(threads)
        return None
    return ProcessPoolExecutor(
        workers, mp_context=mp.get_context("fork"), initializer=initializer, initargs=initargs
    )


def _run_chunks(fn, chunks, pool, progress: bool, description: str, total: int):
    prog = progress_bar(enabled=progress)
    results = []
    # Workers are forked on submit: do it before the progress display starts its thread.
    futures = [pool.submit(fn, c) for c in chunks] if pool is not None else None
    with prog:
        task = prog.add_task(description, total=total)
        if futures is None:
            for c in chunks:
                results.append(fn(c))
                prog.advance(task, len(c))
        else:
            for c, f in zip(chunks, futures, strict=True):
                results.append(f.result())
                prog.advance(task, len(c))
    return results


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def prepare(
    faceset: FaceSet,
    embedder=None,
    protocol: Protocol | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = True,
    embedder_factory=None,
) -> Prepared:
    """Detect, align and embed the HR faces of ``faceset`` (or load them from the cache)."""
    t0 = time.perf_counter()
    if embedder_factory is None:
        embedder_factory = (lambda: embedder) if embedder is not None else get_embedder
    emb = embedder if embedder is not None else embedder_factory()
    protocol = protocol or Protocol()
    sets = tuple(dict.fromkeys(("dlib5", emb.landmarks, *protocol.landmark_sets)))
    protocol = Protocol(protocol.template, protocol.upsample, sets)
    key = cache_key(faceset, protocol, emb)
    path = cache_dir() / "faces" / f"{faceset.name}-{key}"
    if use_cache and (path / "meta.json").is_file():
        try:
            p = _load_prepared(path)
        except (OSError, ValueError, KeyError) as e:  # damaged cache: recompute it
            import warnings

            warnings.warn(f"ignoring damaged face cache {path}: {e}", stacklevel=2)
        else:
            p.seconds = time.perf_counter() - t0
            return p
    workers = _default_workers() if workers is None else workers
    keys = faceset.keys
    chunks = [keys[i : i + CHUNK] for i in range(0, len(keys), CHUNK)]
    pool = _pool(workers, _init_prepare, (faceset, protocol, embedder_factory))
    try:
        parts = _run_chunks(_prepare_chunk, chunks, pool, progress, "HR faces", len(keys))
    finally:
        if pool is not None:
            pool.shutdown()
        _W.clear()
    ok, hr, lms, dets, embs, failed = [], [], {s: [] for s in sets}, [], [], {}
    for k, h, lm, d, e, f in parts:
        failed.update(f)
        if not k:
            continue
        ok += k
        hr.append(h)
        for s in sets:
            lms[s].append(lm[s])
        dets.append(d)
        embs.append(e)
    if not ok:
        raise ValueError(f"{faceset.name}: no usable face in {len(keys)} images: {failed}")
    p = Prepared(
        ok,
        np.concatenate(hr),
        {s: np.concatenate(v) for s, v in lms.items()},
        np.concatenate(dets),
        np.concatenate(embs),
        failed,
    )
    if use_cache:
        _save_prepared(
            p,
            path,
            {"dataset": faceset.name, "protocol": asdict(protocol), "embedder": emb.fingerprint()},
        )
        p.path = path
    p.seconds = time.perf_counter() - t0
    return p


def _save_prepared(p: Prepared, path: Path, meta: dict) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "hr.npy", p.hr)
    for s, v in p.landmarks.items():
        np.save(tmp / f"landmarks_{s}.npy", v)
    np.save(tmp / "detected.npy", p.detected)
    np.save(tmp / "hr_embeddings.npy", p.hr_embeddings)
    meta = dict(
        meta, keys=p.keys, failed=p.failed, sets=list(p.landmarks), version=PROTOCOL_VERSION
    )
    (tmp / "meta.json").write_text(json.dumps(meta))
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    try:
        tmp.rename(path)
    except OSError:  # another process won the race: theirs is as good
        shutil.rmtree(tmp, ignore_errors=True)


def _load_prepared(path: Path) -> Prepared:
    meta = json.loads((path / "meta.json").read_text())
    return Prepared(
        keys=meta["keys"],
        hr=np.load(path / "hr.npy", mmap_mode="r"),
        landmarks={s: np.load(path / f"landmarks_{s}.npy") for s in meta["sets"]},
        detected=np.load(path / "detected.npy"),
        hr_embeddings=np.load(path / "hr_embeddings.npy"),
        failed=meta["failed"],
        from_cache=True,
        path=path,
    )


# ----------------------------------------------------------------------------- per model


def _init_eval(prepared: Prepared, model, scale: int, embedder, degradation) -> None:
    torch.set_num_threads(1)
    _W.update(prepared=prepared, model=model, scale=scale, embedder=embedder, deg=degradation)


def _eval_chunk(idx: np.ndarray):
    p: Prepared = _W["prepared"]
    emb = _W["embedder"]
    hr = torch.from_numpy(np.ascontiguousarray(p.hr[idx])).permute(0, 3, 1, 2).contiguous()
    lr = _W["deg"](hr, _W["scale"], int(idx[0]))
    with torch.no_grad():
        out = _W["model"](lr.float() / 255.0)
        if out.shape != hr.shape:
            raise ValueError(
                f"model {getattr(_W['model'], 'name', '?')} returned {tuple(out.shape)} for "
                f"LR {tuple(lr.shape)}; expected {tuple(hr.shape)}"
            )
        sr = quantize_uint8(out * 255.0)
        lm = torch.from_numpy(p.landmarks[emb.landmarks][idx])
        e_sr = emb(sr.float() / 255.0, lm).float().numpy()
    e_hr = p.hr_embeddings[idx]
    dist = np.linalg.norm(e_sr - e_hr, axis=1)
    cos = (e_sr * e_hr).sum(1) / (np.linalg.norm(e_sr, axis=1) * np.linalg.norm(e_hr, axis=1))
    # PSNR/SSIM on BT.601 Y (float, the modern convention): Y computed once for both metrics
    y_sr, y_hr = rgb_uint8_to_y(sr, rounded=False), rgb_uint8_to_y(hr, rounded=False)
    ps = psnr(y_sr, y_hr, channel="rgb").numpy()
    ss = ssim(y_sr, y_hr, channel="rgb").numpy()
    return idx, e_sr, dist, cos, ps, ss


@dataclass
class ModelScores:
    model: str
    scale: int
    sr_embeddings: np.ndarray
    id_distance: np.ndarray
    id_cosine: np.ndarray
    psnr: np.ndarray
    ssim: np.ndarray
    seconds: float


def evaluate_model(
    prepared: Prepared,
    model,
    scale: int,
    embedder,
    degradation: FaceDegradation | None = None,
    workers: int | None = None,
    progress: bool = True,
    batch: int = CHUNK,
) -> ModelScores:
    """Super-resolve every cached HR face's LR and score it (model-dependent half)."""
    t0 = time.perf_counter()
    n = len(prepared.keys)
    h, w = prepared.hr.shape[1:3]
    if h % scale or w % scale:
        raise ValueError(f"HR crops {h}x{w} are not divisible by scale {scale}")
    deg = degradation or FaceDegradation()
    workers = _default_workers() if workers is None else workers
    chunks = [np.arange(i, min(i + batch, n)) for i in range(0, n, batch)]
    pool = _pool(workers, _init_eval, (prepared, model, scale, embedder, deg))
    try:
        parts = _run_chunks(_eval_chunk, chunks, pool, progress, f"{model.name} x{scale}", n)
    finally:
        if pool is not None:
            pool.shutdown()
        _W.clear()
    d = embedder.dim
    e_sr = np.zeros((n, d), np.float32)
    dist, cos, ps, ss = (np.zeros(n) for _ in range(4))
    for idx, e, a, b, c, s in parts:
        e_sr[idx], dist[idx], cos[idx], ps[idx], ss[idx] = e, a, b, c, s
    return ModelScores(model.name, scale, e_sr, dist, cos, ps, ss, time.perf_counter() - t0)


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


def _pair_arrays(pairs: list[Pair], index: dict[str, int]):
    keep = [p for p in pairs if p.first in index and p.second in index]
    i1 = np.array([index[p.first] for p in keep], dtype=np.int64)
    i2 = np.array([index[p.second] for p in keep], dtype=np.int64)
    same = np.array([p.same for p in keep])
    folds = np.array([p.fold for p in keep])
    return i1, i2, same, folds, len(pairs) - len(keep)


def _distance(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        return 1 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return np.linalg.norm(a - b, axis=1)


def verify(prepared: Prepared, pairs: list[Pair], probe: np.ndarray | None, embedder):
    """(acc at threshold, best acc, skipped pairs): gallery HR of the 1st, probe of the 2nd."""
    i1, i2, same, folds, skipped = _pair_arrays(pairs, prepared.index())
    gallery = prepared.hr_embeddings[i1]
    probes = (prepared.hr_embeddings if probe is None else probe)[i2]
    d = _distance(gallery, probes, embedder.metric)
    at, best = verification_accuracy(d, same, folds, embedder.threshold)
    return at, best, skipped


# ----------------------------------------------------------------------------- entry point


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _mean(x: np.ndarray) -> float:
    """Mean of finite values (PSNR is inf for a perfect reconstruction)."""
    x = np.asarray(x, dtype=np.float64)
    f = x[np.isfinite(x)]
    return float(f.mean()) if f.size else float("nan")


def write_csv(path: Path, prepared: Prepared, s: ModelScores) -> None:
    with AtomicFile(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "detected", "id_distance", "id_cosine", "psnr", "ssim"])
        for i, k in enumerate(prepared.keys):
            w.writerow(
                [
                    k,
                    int(prepared.detected[i]),
                    f"{s.id_distance[i]:.6f}",
                    f"{s.id_cosine[i]:.6f}",
                    f"{s.psnr[i]:.4f}",
                    f"{s.ssim[i]:.6f}",
                ]
            )
        w.writerow(
            [
                "mean",
                f"{prepared.detected.mean():.4f}",
                f"{_mean(s.id_distance):.6f}",
                f"{_mean(s.id_cosine):.6f}",
                f"{_mean(s.psnr):.4f}",
                f"{_mean(s.ssim):.6f}",
            ]
        )


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
) -> dict:
    """Score SR models on a face data set; returns (and optionally writes) the JSON results."""
    log = log or (lambda _msg: None)
    data_path = Path(data) if data is not None else None
    is_lfw = data_path is None or pairs is not None or _looks_like_lfw(data_path)
    faceset = lfw_faceset(data_path, pairs) if is_lfw else folder_faceset(data_path)
    emb = get_embedder(embedder)
    prepared = prepare(
        faceset,
        emb,
        use_cache=use_cache,
        workers=workers,
        progress=progress,
        embedder_factory=lambda: get_embedder(embedder),
    )
    for key, why in list(prepared.failed.items())[:20]:
        log(f"skipped {key}: {why}")
    where = f"cache {prepared.path}" if prepared.from_cache else "computed"
    log(
        f"{faceset.name}: {len(prepared.keys)} faces ({int((~prepared.detected).sum())} on the "
        f"fallback box, {len(prepared.failed)} failed), HR stage {prepared.seconds:.1f} s ({where})"
    )
    if faceset.pairs:
        at, best, skipped = verify(prepared, faceset.pairs, None, emb)
        log(f"HR-HR verification: {_pct(at)} at {emb.threshold}, best {_pct(best)}")
        if skipped:
            log(f"{skipped} of {len(faceset.pairs)} pairs skipped (an image failed, see above)")
    deg = degradation or FaceDegradation()
    results = []
    for spec in models:
        t0 = time.perf_counter()
        model = resolve_model(spec, scale)
        scores = evaluate_model(prepared, model, scale, emb, deg, workers, progress)
        at = best = None
        if faceset.pairs:
            at, best, _ = verify(prepared, faceset.pairs, scores.sr_embeddings, emb)
        row = {
            "model": model.name,
            "scale": int(scale),
            "dataset": faceset.name if deg.is_default else f"{faceset.name}+{deg.describe()}",
            "n_images": len(prepared.keys),
            "id_distance": _mean(scores.id_distance),
            "id_cosine": _mean(scores.id_cosine),
            "psnr": _mean(scores.psnr),
            "ssim": _mean(scores.ssim),
            "verif_acc_06": at,
            "verif_acc_best": best,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        results.append(row)
        log(
            f"{row['model']} x{scale}: id distance {row['id_distance']:.4f}, cosine "
            f"{row['id_cosine']:.4f}, PSNR {row['psnr']:.2f}, SSIM {row['ssim']:.4f}, "
            f"verification {_pct(at)} at {emb.threshold} / {_pct(best)} best "
            f"({row['seconds']:.1f} s)"
        )
        if csv_path is not None:
            p = Path(csv_path)
            if len(models) > 1:
                p = p.with_name(f"{p.stem}_{model.name}{p.suffix}")
            write_csv(p, prepared, scores)
    out = {"results": results}
    if json_path is not None:
        write_text_atomic(json_path, json.dumps(out, indent=2) + "\n")
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _looks_like_lfw(path: Path) -> bool:
    """An LFW zip/folder with its default pairs list beside it."""
    return "lfw" in path.name.lower() and (path.parent / "pairsDevTest.txt").is_file()
