"""Aligned training faces: the people of an LFW list -> 128x128 HR crops, landmarks, embeddings.

Face-SR training uses the HR half of the ``srkit faces eval`` protocol (:mod:`srkit.faces.evaluate`,
the same detector, landmarks, ``facesr128`` template and on-disk cache), so a model trains on
exactly the crops it is scored on. On top of that cache this module keeps, per face:

* ``landmarks`` ``(5, 2)``: dlib's 5 points in crop coordinates;
* ``embedding`` and ``embedding_flip`` ``(128,)``: the HR identity embedding of the crop and of its
  mirror image (a flipped training sample is compared with the embedding of the flipped HR);
* ``person``: the LFW name, for the check that no evaluation person is trained on.

Only people of ``peopleDevTrain.txt`` (LFW's View 1 training split: 4,038 people, 9,525 images)
are used by default; :func:`check_no_evaluation_people` refuses any person of
``peopleDevTest.txt`` or ``pairsDevTest.txt``. (``pairs.txt``, LFW's View 2, covers 4,281 people
of whom 2,985 are in ``peopleDevTrain.txt``: figures on all 6000 pairs are not on unseen people;
:func:`unseen_pairs` keeps the pairs whose people were not trained on.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from srkit.common.files import write_text_atomic
from srkit.faces.facesets import FaceSet, _file_identity
from srkit.faces.lfw import LFW, LFW_FALLBACK_BOX, Pair, image_key, read_pairs, read_people

__all__ = [
    "FLIP_DLIB5",
    "FaceTrainSet",
    "check_no_evaluation_people",
    "evaluation_people",
    "flip_landmarks",
    "load_trainset",
    "people_faceset",
    "unseen_pairs",
]

# dlib's 5 points after a horizontal flip: the subject's left eye (points 0, 1) becomes the right
# one (2, 3) and back; the nose stays.
FLIP_DLIB5 = (2, 3, 0, 1, 4)
# and the 68 points (iBUG order): jaw, brows, nose, eyes and mouth mirrored
FLIP_68 = (
    *range(16, -1, -1),  # jaw 0..16
    *range(26, 16, -1),  # brows 17..26
    27, 28, 29, 30,  # nose bridge
    35, 34, 33, 32, 31,  # nostrils
    45, 44, 43, 42, 47, 46,  # eyes 36..41 <-> 42..47
    39, 38, 37, 36, 41, 40,
    54, 53, 52, 51, 50, 49, 48,  # outer lips 48..54
    59, 58, 57, 56, 55,  # 55..59
    64, 63, 62, 61, 60,  # inner lips 60..64
    67, 66, 65,  # 65..67
)  # fmt: skip
EVALUATION_LISTS = ("peopleDevTest.txt", "pairsDevTest.txt")
TRAINSET_VERSION = 1


def flip_landmarks(points: np.ndarray | torch.Tensor, width: int):
    """dlib's 5 or 68 landmarks ``(..., K, 2)`` of an image of ``width`` pixels, mirrored
    left-right (and re-ordered, so that each index names the same part of the face)."""
    order = {5: FLIP_DLIB5, 68: FLIP_68}.get(points.shape[-2])
    if order is None:
        raise ValueError(f"flip_landmarks takes 5 or 68 points, got {points.shape[-2]}")
    p = points[..., list(order), :]
    p = p.clone() if isinstance(p, torch.Tensor) else np.array(p, copy=True)
    p[..., 0] = (width - 1) - p[..., 0]
    return p


def _list_people(path: Path) -> set[str]:
    if path.name.startswith("pairs"):
        names: set[str] = set()
        for pair in read_pairs(path):
            names.add(pair.first.split("/")[0])
            names.add(pair.second.split("/")[0])
        return names
    return {name for name, _n, _fold in read_people(path)}


def evaluation_people(lists_dir: str | Path, lists: tuple[str, ...] = EVALUATION_LISTS) -> set[str]:
    """Every person named by the evaluation lists found in ``lists_dir``."""
    found: set[str] = set()
    for name in lists:
        path = Path(lists_dir) / name
        if path.is_file():
            found |= _list_people(path)
    return found


def check_no_evaluation_people(
    people: set[str] | list[str], lists_dir: str | Path, lists: tuple[str, ...] = EVALUATION_LISTS
) -> None:
    """Raise ``ValueError`` if a training person is in an evaluation list."""
    clash = sorted(set(people) & evaluation_people(lists_dir, lists))
    if clash:
        shown = ", ".join(clash[:5]) + (" ..." if len(clash) > 5 else "")
        raise ValueError(
            f"{len(clash)} training people are evaluation people ({', '.join(lists)}): {shown}"
        )


def unseen_pairs(pairs: list[Pair], trained: set[str]) -> list[Pair]:
    """The pairs neither of whose people is in ``trained``."""
    return [
        p
        for p in pairs
        if p.first.split("/")[0] not in trained and p.second.split("/")[0] not in trained
    ]


def people_faceset(
    people: str | Path = "peopleDevTrain.txt", data: str | Path | None = None
) -> FaceSet:
    """Every image of the people of an LFW people list (a name is looked up beside the zip)."""
    lfw = LFW(data)
    path = Path(people)
    if not path.is_file() and not path.is_absolute():
        path = lfw.lists_dir / path
    if not path.is_file():
        raise FileNotFoundError(f"people list not found: {path}")
    keys = [image_key(name, i) for name, n, _fold in read_people(path) for i in range(1, n + 1)]
    missing = [k for k in keys if k not in lfw]
    if missing:
        raise ValueError(f"{len(missing)} images of {path.name} not in {lfw.path}: {missing[:3]}")
    ident = f"{_file_identity(lfw.path) if lfw.path.is_file() else lfw.path.resolve()}|"
    ident += _file_identity(path)
    return FaceSet(f"lfw-{path.stem}", keys, lfw.read, ident, None, LFW_FALLBACK_BOX)


@dataclass
class FaceTrainSet:
    """Aligned HR faces with their landmarks and identity embeddings (arrays in memory)."""

    name: str
    names: list[str]
    hr: np.ndarray  # (N, 3, 128, 128) uint8
    landmarks: np.ndarray  # (N, 5, 2) float32, crop coordinates
    embedding: np.ndarray  # (N, D) float32
    embedding_flip: np.ndarray  # (N, D) float32
    embedder: str  # the embedder's fingerprint
    landmarks68: np.ndarray | None = None  # (N, 68, 2) float32: dlib's 68 points in the crop

    def __len__(self) -> int:
        return len(self.names)

    @property
    def people(self) -> set[str]:
        return {n.split("/")[0] for n in self.names}


@torch.no_grad()
def _flip_embeddings(
    hr: np.ndarray, landmarks: np.ndarray, embedder, chunk: int = 64
) -> np.ndarray:
    out = []
    width = hr.shape[-1]
    for start in range(0, len(hr), chunk):
        x = torch.from_numpy(np.ascontiguousarray(hr[start : start + chunk])).float() / 255.0
        lm = torch.from_numpy(flip_landmarks(landmarks[start : start + chunk], width))
        out.append(embedder(x.flip(-1), lm.double()).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, embedder.dim), np.float32)


def load_trainset(
    people: str | Path = "peopleDevTrain.txt",
    data: str | Path | None = None,
    embedder=None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = True,
    check_lists: tuple[str, ...] = EVALUATION_LISTS,
) -> FaceTrainSet:
    """The aligned faces of ``people`` (detected, aligned and embedded once, then cached).

    Raises ``ValueError`` when a person of ``check_lists`` (beside the LFW zip) is in ``people``.
    """
    from srkit.faces.embed import get_embedder
    from srkit.faces.evaluate import _progress, face_evaluation

    faceset = people_faceset(people, data)
    lfw_dir = LFW(data).lists_dir
    check_no_evaluation_people({k.split("/")[0] for k in faceset.keys}, lfw_dir, check_lists)
    emb = embedder if embedder is not None else get_embedder()
    evaluation = face_evaluation([], emb, faceset, use_cache=use_cache, workers=workers)
    with _progress(progress, f"HR faces of {faceset.name}", len(faceset.keys)) as advance:
        evaluation.on_prepared = advance
        prepared = evaluation.prepare(faceset)
    hr = np.asarray(prepared.hr())
    landmarks = np.asarray(prepared.extra("landmarks_dlib5"), dtype=np.float32)
    embedding = np.asarray(prepared.extra("hr_embedding"), dtype=np.float32)
    folder = Path(prepared.path) if use_cache and prepared.path is not None else None
    flipped = _cached(folder, "hr_embedding_flip", emb.fingerprint(),
                      lambda: _flip_embeddings(hr, landmarks, emb))  # fmt: skip
    points68 = _cached(folder, "hr_landmarks68", "dlib68:box1/6-5/6",
                       lambda: _landmarks68(hr, progress))  # fmt: skip
    return FaceTrainSet(
        faceset.name,
        list(prepared.names),
        hr,
        landmarks,
        embedding,
        flipped,
        emb.fingerprint(),
        points68.astype(np.float32),
    )


def _cached(folder: Path | None, name: str, fingerprint: str, compute) -> np.ndarray:
    """An array kept beside the HR cache (``name.npy`` + ``name.json``), computed once."""
    if folder is not None and (folder / f"{name}.npy").is_file():
        try:
            meta = json.loads((folder / f"{name}.json").read_text())
            if meta == {"version": TRAINSET_VERSION, "of": fingerprint}:
                return np.load(folder / f"{name}.npy")
        except (OSError, ValueError):
            pass
    values = compute()
    if folder is not None:
        tmp = folder / f"{name}.tmp.npy"
        np.save(tmp, values)
        tmp.replace(folder / f"{name}.npy")
        meta = {"version": TRAINSET_VERSION, "of": fingerprint}
        write_text_atomic(folder / f"{name}.json", json.dumps(meta) + "\n")
    return values


def _landmarks68(hr: np.ndarray, progress: bool) -> np.ndarray:
    from srkit.common.progress import progress_bar
    from srkit.faces.detect import FaceDetector, crop_landmarks68

    predictor = FaceDetector(68, 0, select="center")
    out = []
    with progress_bar(enabled=progress) as bar:
        task = bar.add_task("68-point landmarks of the HR faces", total=len(hr))
        for start in range(0, len(hr), 256):
            out.append(crop_landmarks68(predictor, hr[start : start + 256]))
            bar.advance(task, len(out[-1]))
    return np.concatenate(out) if out else np.zeros((0, 68, 2))
