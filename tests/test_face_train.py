"""Face-SR training: the face task, the identity loss, the training set and who is in it.

The task runs on a small synthetic training set (random faces with the template's landmarks);
the LFW checks need ``../shared`` (skipped when it is absent).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from srkit.archs import build
from srkit.data.builtin import data_dir
from srkit.faces import task as face_task
from srkit.faces.align import TEMPLATES
from srkit.faces.heatmapnet import HeatmapNet, save_heatmap_net
from srkit.faces.heatmaps import landmark_heatmaps
from srkit.faces.identity import IdentityLoss
from srkit.faces.lfw import Pair
from srkit.faces.paths import MissingModelError, model_file
from srkit.faces.trainset import (
    FLIP_68,
    FLIP_DLIB5,
    FaceTrainSet,
    check_no_evaluation_people,
    evaluation_people,
    flip_landmarks,
    people_faceset,
    unseen_pairs,
)
from srkit.losses import FacialAttentionLoss, LossTerm, WeightedLoss
from srkit.train.batch import Batch, collate
from srkit.train.experiment import load_experiment
from srkit.train.tasks import task_class
from srkit.train.trainer import train

LFW_DIR = data_dir() / "faces" / "lfw"


def _dlib_model() -> Path:
    try:
        return model_file("dlib_face_recognition_resnet_model_v1.dat")
    except MissingModelError as error:
        pytest.skip(str(error))


def _template() -> np.ndarray:
    return TEMPLATES["facesr128"].points.astype(np.float32)


def test_flipped_landmarks_swap_the_eyes_and_mirror_x() -> None:
    points = np.arange(10, dtype=np.float32).reshape(5, 2)
    flipped = flip_landmarks(points, 128)
    assert np.array_equal(flipped[:, 1], points[list(FLIP_DLIB5), 1])
    assert np.array_equal(flipped[:, 0], 127 - points[list(FLIP_DLIB5), 0])
    assert np.array_equal(flip_landmarks(flipped, 128), points)
    # dlib's template is symmetric about a vertical line: its mirror image is itself, shifted
    t = _template()
    d = flip_landmarks(t, 128) - t
    assert np.ptp(d[:, 0]) < 0.01 and np.abs(d[:, 1]).max() < 0.05
    assert torch.equal(flip_landmarks(torch.from_numpy(points), 128), torch.from_numpy(flipped))


def test_split_people_is_stable_and_disjoint() -> None:
    people = {f"person_{i}" for i in range(50)}
    train_a, val_a = face_task.split_people(people, 7, seed=3)
    train_b, val_b = face_task.split_people(set(sorted(people, reverse=True)), 7, seed=3)
    assert val_a == val_b and len(val_a) == 7
    assert not train_a & val_a and train_a | val_a == people
    assert face_task.split_people(people, 7, seed=4)[1] != val_a


def test_evaluation_people_are_refused(tmp_path: Path) -> None:
    (tmp_path / "peopleDevTest.txt").write_text("2\nAnn_Smith\t2\nBob_Jones\t1\n")
    (tmp_path / "pairsDevTest.txt").write_text("1\nCid_Ray\t1\t2\nDee_Lo\t1\tEve_Su\t1\n")
    assert evaluation_people(tmp_path) == {"Ann_Smith", "Bob_Jones", "Cid_Ray", "Dee_Lo", "Eve_Su"}
    check_no_evaluation_people({"Zed_Zu", "Yan_Ye"}, tmp_path)
    with pytest.raises(ValueError, match="2 training people are evaluation people"):
        check_no_evaluation_people({"Zed_Zu", "Eve_Su", "Ann_Smith"}, tmp_path)


def test_unseen_pairs_drop_pairs_with_a_trained_person() -> None:
    pairs = [
        Pair("A/A_0001.jpg", "A/A_0002.jpg", True, 0),
        Pair("A/A_0001.jpg", "B/B_0001.jpg", False, 0),
        Pair("C/C_0001.jpg", "D/D_0001.jpg", False, 1),
    ]
    assert unseen_pairs(pairs, {"A"}) == pairs[2:]


@pytest.mark.shared
def test_lfw_training_people_are_not_evaluation_people() -> None:
    if not (LFW_DIR / "lfw-deepfunneled.zip").is_file():
        pytest.skip(f"LFW not found in {LFW_DIR} (set SRKIT_DATA)")
    faceset = people_faceset("peopleDevTrain.txt", LFW_DIR / "lfw-deepfunneled.zip")
    people = {k.split("/")[0] for k in faceset.keys}
    assert len(faceset.keys) == 9525 and len(people) == 4038
    check_no_evaluation_people(people, LFW_DIR)  # raises on a clash
    assert not people & evaluation_people(LFW_DIR)
    with pytest.raises(ValueError, match="evaluation people"):  # and the test list is refused
        check_no_evaluation_people(
            {k.split("/")[0] for k in people_faceset("peopleDevTest.txt").keys}, LFW_DIR
        )


def _faces(n: int = 24, seed: int = 0) -> FaceTrainSet:
    rng = np.random.default_rng(seed)
    low = rng.integers(40, 220, size=(n, 3, 16, 16)).astype(np.float32)
    hr = torch.nn.functional.interpolate(torch.from_numpy(low), size=128, mode="bilinear")
    hr = hr.round().clamp(0, 255).to(torch.uint8).numpy()
    landmarks = np.repeat(_template()[None], n, axis=0)
    emb = rng.normal(size=(n, 128)).astype(np.float32) * 0.09
    names = [f"person_{i // 2}/person_{i // 2}_{i % 2 + 1:04d}.jpg" for i in range(n)]
    points68 = np.stack([np.linspace(30, 98, 68), np.linspace(35, 100, 68)], 1).astype(np.float32)
    points68 = np.repeat(points68[None], n, axis=0) + rng.normal(size=(n, 68, 2)).astype(np.float32)
    return FaceTrainSet("synthetic", names, hr, landmarks, emb, -emb, "test", points68)


def test_face_crops_flip_landmarks_and_identity_with_the_face() -> None:
    faces = _faces(4)
    crops = face_task.FaceCrops(faces.hr, faces.landmarks, faces.embedding, faces.embedding_flip,
                                8, seed=1)  # fmt: skip
    seen = {"plain": 0, "flipped": 0}
    for it in range(40):
        sample = crops[(it, 0)]
        assert sample["lr"].shape == (3, 16, 16) and sample["hr"].shape == (3, 128, 128)
        matches = [i for i in range(4) if torch.equal(sample["hr"], faces_hr(faces, i))]
        mirrored = [i for i in range(4) if torch.equal(sample["hr"], faces_hr(faces, i).flip(-1))]
        if matches:
            i = matches[0]
            seen["plain"] += 1
            assert torch.equal(sample["identity"], torch.from_numpy(faces.embedding[i]))
            assert torch.allclose(sample["landmarks"], torch.from_numpy(faces.landmarks[i]))
        else:
            i = mirrored[0]
            seen["flipped"] += 1
            assert torch.equal(sample["identity"], torch.from_numpy(faces.embedding_flip[i]))
            want = flip_landmarks(torch.from_numpy(faces.landmarks[i]), 128)
            assert torch.allclose(sample["landmarks"], want)
    assert seen["plain"] and seen["flipped"]
    assert torch.equal(crops[(3, 1)]["lr"], crops[(3, 1)]["lr"])  # keyed, no hidden state


def faces_hr(faces: FaceTrainSet, i: int) -> torch.Tensor:
    return torch.from_numpy(faces.hr[i]).float() / 255.0


def test_identity_loss_gradient_reaches_the_generator() -> None:
    _dlib_model()
    torch.manual_seed(0)
    net = build("repan_face", scale=8, features=8, blocks=1, up_features=[8, 8, 8])
    faces = _faces(2)
    lr = torch.rand(2, 3, 16, 16)
    batch = Batch(lr=lr, hr=faces_hr(faces, 0)[None].repeat(2, 1, 1, 1),
                  landmarks=torch.from_numpy(faces.landmarks[:2]),
                  identity=torch.from_numpy(faces.embedding[:2]))  # fmt: skip
    loss = WeightedLoss([LossTerm("identity", 1.0)], net_channels="rgb", fields=batch.present())
    total, parts = loss(net(lr), batch)
    assert float(total.detach()) > 0 and set(parts) == {"identity"}
    total.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    # the judge is frozen: no gradients of its own, eval mode after train()
    assert all(p.grad is None for p in loss.modules_[0].network.parameters())
    loss.train()
    assert not loss.modules_[0].network.training


def test_identity_loss_is_zero_on_its_own_embedding_and_cosine_is_bounded() -> None:
    _dlib_model()
    faces = _faces(2)
    images = torch.from_numpy(faces.hr[:2]).float() / 255.0
    landmarks = torch.from_numpy(faces.landmarks[:2])
    distance = IdentityLoss("distance")
    with torch.no_grad():
        own = distance.embed(images, landmarks)
    batch = Batch(lr=images, landmarks=landmarks, identity=own)
    assert float(distance(images, batch)) < 1e-5
    assert 0 <= float(IdentityLoss("cosine")(images, Batch(lr=images, landmarks=landmarks,
                                                         identity=-own))) <= 2.0 + 1e-6  # fmt: skip
    with pytest.raises(ValueError, match="distance or cosine"):
        IdentityLoss("l2")


def test_identity_loss_needs_landmarks_in_the_batch() -> None:
    with pytest.raises(ValueError, match="landmarks"):
        WeightedLoss([LossTerm("identity")], net_channels="rgb", fields={"lr", "hr"})


def _face_config(tmp_path: Path, losses: list[dict], iters: int = 6) -> Path:
    lfw = tmp_path / "lfw"
    lfw.mkdir(exist_ok=True)
    config = {
        "name": "face_tiny",
        "task": "face",
        "arch": "repan_face",
        "arch_options": {"features": 8, "blocks": 1, "up_features": [8, 8, 8]},
        "scale": 8,
        "seed": 2,
        "data": {"train": [str(lfw)], "batch_size": 4, "workers": 0},
        "val": {"every": iters},
        "train": {"iters": iters, "checkpoint_every": iters, "device": "cpu", "log_every": 1},
        "optimizers": {"g": {"lr": 2e-3}},
        "losses": {"g": losses},
        "face": {"val_people": 2, "val_faces": 4, "select": "identity"},
    }
    path = tmp_path / "face.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_face_task_trains_validates_and_exports_a_face_model(tmp_path, monkeypatch) -> None:
    _dlib_model()
    faces = _faces(24)
    monkeypatch.setattr(face_task, "load_trainset", lambda *a, **k: faces)
    assert task_class("face") is face_task.FaceTask
    losses = [{"name": "l1", "weight": 1.0}, {"name": "identity", "weight": 0.5}]
    config = load_experiment(_face_config(tmp_path, losses, iters=8))
    result = train(config, tmp_path / "run", show_progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().split("\n")
               if line.strip()]  # fmt: skip
    steps = [r for r in records if "loss" in r and "identity" in r]
    assert len(steps) == 8 and all(np.isfinite(r["identity"]) for r in steps)
    assert np.mean([r["loss"] for r in steps[-3:]]) < np.mean([r["loss"] for r in steps[:3]])
    val = next(r["val"] for r in records if "val" in r)
    (scores,) = val.values()
    assert scores["n"] == 4 and scores["score"] == -scores["id_distance"] and scores["psnr"] > 10
    manifest = json.loads(Path(result.model_path).with_suffix(".json").read_text())
    assert manifest["purpose"] == "face" and manifest["scale"] == 8
    assert manifest["scores"]["validation"]["id_distance"] == pytest.approx(scores["id_distance"])
    assert manifest["options"]["fused"] is True


def test_face_task_holds_its_validation_people_out_of_training(tmp_path, monkeypatch) -> None:
    faces = _faces(24)
    monkeypatch.setattr(face_task, "load_trainset", lambda *a, **k: faces)
    config = load_experiment(_face_config(tmp_path, [{"name": "l1"}]))
    task = face_task.FaceTask(config, _Ctx())
    train_idx, val_idx = task._split()
    people = lambda idx: {faces.names[i].split("/")[0] for i in idx}  # noqa: E731
    assert len(people(val_idx)) == 2 and not people(train_idx) & people(val_idx)
    assert len(task.dataset()) == len(train_idx) == 20
    assert task.training_people() == people(train_idx)


def test_face_task_refuses_bad_configs(tmp_path) -> None:
    with pytest.raises(Exception, match="heatmaps|perceptual|needs"):
        terms = [{"name": "l1"}, {"name": "tv"}, {"name": "style", "target": "teacher"}]
        load_experiment(_face_config(tmp_path, terms))
    path = _face_config(tmp_path, [{"name": "l1"}])
    raw = yaml.safe_load(path.read_text())
    raw["scale"] = 3
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(Exception, match="not divisible by x3"):
        load_experiment(path)


class _Ctx:
    device = torch.device("cpu")
    show_progress = False
    is_main = True


def test_collate_keeps_face_fields() -> None:
    faces = _faces(4)
    crops = face_task.FaceCrops(faces.hr, faces.landmarks, faces.embedding, faces.embedding_flip,
                                4, seed=0)  # fmt: skip
    batch = collate([crops[(0, i)] for i in range(3)])
    assert batch.present() == {"lr", "hr", "landmarks", "identity"}
    assert batch.lr.shape == (3, 3, 32, 32) and batch.landmarks.shape == (3, 5, 2)


def test_68_point_flip_is_a_mirror_pairing() -> None:
    order = np.array(FLIP_68)
    assert sorted(order) == list(range(68)) and np.array_equal(order[order], np.arange(68))
    pairs = {(0, 16), (17, 26), (36, 45), (39, 42), (48, 54), (31, 35), (60, 64), (65, 67)}
    assert all(order[a] == b for a, b in pairs)
    assert all(order[i] == i for i in (8, 27, 30, 33, 51, 57, 62, 66))
    with pytest.raises(ValueError, match="5 or 68"):
        flip_landmarks(np.zeros((3, 2)), 10)


def test_heatmaps_peak_at_the_landmarks() -> None:
    points = torch.tensor([[[10.0, 20.0], [100.0, 64.0]]])  # (1, 2, 2) in a 128 crop
    maps = landmark_heatmaps(points, 128, size=32, sigma=1.0)
    assert maps.shape == (1, 2, 32, 32) and float(maps.max()) <= 1.0
    for k, (x, y) in enumerate(points[0].tolist()):
        row, col = divmod(int(maps[0, k].argmax()), 32)
        assert abs(col - ((x + 0.5) / 4 - 0.5)) <= 0.5 and abs(row - ((y + 0.5) / 4 - 0.5)) <= 0.5


def test_attention_weights_come_from_the_heatmaps() -> None:
    points = torch.tensor([[[40.0, 40.0]]])
    batch = Batch(lr=torch.zeros(1, 3, 16, 16), heatmaps=landmark_heatmaps(points, 128))
    hr = torch.zeros(1, 3, 128, 128)
    near, far = hr.clone(), hr.clone()
    near[..., 36:44, 36:44] = 0.5  # an error at the landmark
    far[..., 100:108, 100:108] = 0.5  # the same error far from every landmark
    loss = FacialAttentionLoss("l1")
    assert float(loss(near, hr, batch)) > 100 * float(loss(far, hr, batch))
    assert float(loss(far, hr, batch)) < 1e-6
    with_base = FacialAttentionLoss("l1", base=1.0)
    assert float(with_base(far, hr, batch)) == pytest.approx(float((far - hr).abs().mean()))
    with pytest.raises(ValueError, match="heatmaps"):
        WeightedLoss([LossTerm("attention")], net_channels="rgb", fields={"lr", "hr"})


def test_face_crops_carry_heatmaps_that_flip_with_the_face() -> None:
    faces = _faces(2)
    crops = face_task.FaceCrops(faces.hr, faces.landmarks, faces.embedding, faces.embedding_flip,
                                8, seed=3, landmarks68=faces.landmarks68)  # fmt: skip
    for it in range(12):
        sample = crops[(it, 0)]
        assert sample["heatmaps"].shape == (68, 32, 32)
        i = next(i for i in range(2) if torch.equal(sample["hr"], faces_hr(faces, i))
                 or torch.equal(sample["hr"], faces_hr(faces, i).flip(-1)))  # fmt: skip
        flipped = not torch.equal(sample["hr"], faces_hr(faces, i))
        points = torch.from_numpy(faces.landmarks68[i])
        if flipped:
            points = flip_landmarks(points, 128)
        assert torch.allclose(sample["heatmaps"], landmark_heatmaps(points, 128))


def test_face_task_trains_with_the_attention_loss(tmp_path, monkeypatch) -> None:
    _dlib_model()  # validation scores identity
    faces = _faces(24)
    monkeypatch.setattr(face_task, "load_trainset", lambda *a, **k: faces)
    losses = [{"name": "l1", "weight": 1.0}, {"name": "attention", "weight": 1.0}]
    config = load_experiment(_face_config(tmp_path, losses, iters=3))
    train(config, tmp_path / "run", show_progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().split("\n")
               if line.strip()]  # fmt: skip
    steps = [r for r in records if "attention" in r]
    assert len(steps) == 3 and all(r["attention"] > 0 for r in steps)


def _progressive_config(tmp_path: Path, losses: list[dict], **face) -> Path:
    path = _face_config(tmp_path, losses, iters=6)
    config = yaml.safe_load(path.read_text())
    config.update(arch="pfsrnet", arch_options={"width": 8})
    config["face"].update({"progressive": [2, 4], "fade": 2, **face})
    path.write_text(yaml.safe_dump(config))
    return path


def test_pfsrnet_trains_progressively_with_fade_in(tmp_path, monkeypatch) -> None:
    _dlib_model()  # validation scores identity
    faces = _faces(24)
    monkeypatch.setattr(face_task, "load_trainset", lambda *a, **k: faces)
    landmarks = save_heatmap_net(HeatmapNet(features=4, blocks=1), tmp_path / "lm", {})
    losses = [
        {"name": "l1", "weight": 1.0},
        {"name": "attention", "weight": 1.0},
        {"name": "heatmap", "weight": 1.0, "options": {"network": str(landmarks)}},
    ]
    config = load_experiment(_progressive_config(tmp_path, losses))
    task = task_class("face")(config, _context())
    stages = [task.stage_at(i) for i in range(6)]
    assert stages == [(1, 1.0), (1, 1.0), (2, 0.5), (2, 1.0), (3, 0.5), (3, 1.0)]
    result = train(config, tmp_path / "run", show_progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().split("\n")
               if line.strip()]  # fmt: skip
    steps = [r for r in records if "stage" in r]
    assert [(r["stage"], r["alpha"]) for r in steps] == stages
    # the face terms wait for the last stage; the pixel term trains every stage
    assert all(("attention" in r) == ("heatmap" in r) == (r["stage"] == 3) for r in steps)
    assert all(np.isfinite(r["l1"]) for r in steps)
    net = build("pfsrnet", scale=8, width=8)
    from safetensors.torch import load_file

    net.load_state_dict(load_file(str(result.model_path)))
    assert net(torch.rand(1, 3, 16, 16)).shape == (1, 3, 128, 128)


def test_progressive_training_is_checked(tmp_path, monkeypatch) -> None:
    faces = _faces(24)
    monkeypatch.setattr(face_task, "load_trainset", lambda *a, **k: faces)
    with pytest.raises(ValueError, match="increasing iterations"):
        load_experiment(_progressive_config(tmp_path, [{"name": "l1"}], progressive=[4, 2]))
    path = _progressive_config(tmp_path, [{"name": "l1"}])
    config = yaml.safe_load(path.read_text())
    config.update(arch="repan_face", arch_options={"features": 8, "blocks": 1})
    path.write_text(yaml.safe_dump(config))
    task = task_class("face")(load_experiment(path), _context())
    with pytest.raises(ValueError, match="repan_face does not grow in stages"):
        task.build(resuming=False)
    config["face"]["progressive"] = [2]
    config["arch"], config["arch_options"] = "pfsrnet", {"width": 8}
    path.write_text(yaml.safe_dump(config))
    task = task_class("face")(load_experiment(path), _context())
    with pytest.raises(ValueError, match="pfsrnet has 3 stages; 1 start iterations give 2"):
        task.build(resuming=False)
    path = _progressive_config(tmp_path, [{"name": "attention"}])
    task = task_class("face")(load_experiment(path), _context())
    with pytest.raises(ValueError, match="needs a pixel term"):
        task.build(resuming=False)


def _context():
    from srkit.train.task import TaskContext

    return TaskContext(device=torch.device("cpu"), show_progress=False)


def test_face_gan_trains_the_discriminator_and_exports_a_face_model(tmp_path, monkeypatch) -> None:
    from srkit.faces import gan_task

    faces = _faces(24)
    monkeypatch.setattr(face_task, "load_trainset", lambda *a, **k: faces)
    path = _face_config(tmp_path, [{"name": "l1", "weight": 1.0}], iters=4)
    config = yaml.safe_load(path.read_text())
    options = config.pop("face")
    patchgan = {"arch": "patchgan", "options": {"features": 8, "layers": 2}}
    options.update(select="psnr", kind="wgan_gp", d_warmup=1, discriminator=patchgan)
    config.update(task="face_gan", face_gan=options)
    config["optimizers"]["d"] = {"lr": 1e-3}
    path.write_text(yaml.safe_dump(config))
    assert task_class("face_gan") is gan_task.FaceGanTask
    result = train(load_experiment(path), tmp_path / "run", show_progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().split("\n")
               if line.strip()]  # fmt: skip
    steps = [r for r in records if "loss_d" in r]
    assert len(steps) == 4 and all(np.isfinite(r["loss_d"]) for r in steps)
    assert "adversarial" not in steps[0] and all("adversarial" in r for r in steps[1:])
    manifest = json.loads(Path(result.model_path).with_suffix(".json").read_text())
    assert manifest["purpose"] == "face" and manifest["scale"] == 8
    config["face_gan"]["progressive"] = [2, 3]
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="progressive training is task: face"):
        load_experiment(path)
