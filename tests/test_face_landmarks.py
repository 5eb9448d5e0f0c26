"""Landmark heatmaps for face SR: srkit's heatmap network and its distillation task, the heatmap
loss, and PFSRNet's compressed FAN read from a whole pickled module without running it."""

from __future__ import annotations

import json
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from srkit.data.builtin import official_weights_dir
from srkit.faces import landmark_task
from srkit.faces.fan import FanSqueeze, load_fan_squeeze
from srkit.faces.heatmapnet import (
    HeatmapLoss,
    HeatmapNet,
    heatmap_points,
    landmark_nme,
    load_heatmap_net,
    save_heatmap_net,
)
from srkit.faces.heatmaps import landmark_heatmaps
from srkit.faces.trainset import FaceTrainSet
from srkit.losses import LossTerm, WeightedLoss
from srkit.train.batch import Batch
from srkit.train.experiment import load_experiment
from srkit.train.tasks import task_class
from srkit.train.trainer import train
from srkit.weights.errors import WeightsError
from srkit.weights.legacy import read_pickled_module
from srkit.weights.native import load_native, read_manifest

FAN_FILE = official_weights_dir() / "pfsrnet_fan" / "compressed_model_011000.pth"


def _points(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 20 + 88 * torch.rand(n, 68, 2, generator=g)


def test_heatmap_net_shape_and_parameters() -> None:
    net = HeatmapNet()
    assert sum(p.numel() for p in net.parameters()) == 319_812  # 1472 + 18496 + 4 x 73856 + 4420
    assert net(torch.rand(2, 3, 128, 128)).shape == (2, 68, 32, 32)
    assert HeatmapNet(features=8, blocks=1)(torch.rand(1, 3, 64, 96)).shape == (1, 68, 16, 24)
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(1, 3, 126, 128))


def test_heatmap_points_invert_the_drawn_heatmaps() -> None:
    points = _points(3)
    maps = landmark_heatmaps(points, 128, 32, 1.0)
    found = heatmap_points(maps, 128)
    # a quarter-resolution map, decoded to a quarter of its pixel: within 2 crop pixels
    assert (found - points).abs().max() < 2.0
    assert (found - points).norm(dim=-1).mean() < 1.0
    assert torch.allclose(landmark_nme(points, points), torch.zeros(3))
    assert landmark_nme(points + 3, points).min() > 0


def test_similarity_warp_moves_the_points_with_the_image() -> None:
    image = torch.zeros(3, 128, 128)
    point = torch.tensor([[40.0, 70.0]])
    image[:, 70, 40] = 1.0
    warped, moved = landmark_task.similarity_warp(image, point, 0.3, 1.1, (5.0, -4.0))
    peak = divmod(int(warped[0].argmax()), 128)
    assert abs(peak[0] - float(moved[0, 1])) <= 1 and abs(peak[1] - float(moved[0, 0])) <= 1
    same, kept = landmark_task.similarity_warp(image, point, 0.0, 1.0, (0.0, 0.0))
    assert torch.allclose(same, image, atol=1e-5) and torch.allclose(kept, point)


def _saved_net(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = HeatmapNet(features=8, blocks=1)
    return save_heatmap_net(net, tmp_path / "lm.safetensors", {"name": "lm"})


def test_heatmap_model_round_trips_and_is_not_an_upscaler(tmp_path) -> None:
    path = _saved_net(tmp_path)
    manifest = read_manifest(path.with_suffix(".json"))
    assert manifest["purpose"] == "landmarks" and manifest["scale"] == 1
    net, _ = load_heatmap_net(path)
    torch.manual_seed(0)
    again = HeatmapNet(features=8, blocks=1)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(net(x), again(x))
    with pytest.raises(WeightsError, match="not an upscaler"):
        load_native(path)


def test_heatmap_loss_is_zero_on_the_hr_and_its_gradient_reaches_the_output(tmp_path) -> None:
    path = _saved_net(tmp_path)
    loss = WeightedLoss(
        [LossTerm("heatmap", 1.0, options={"network": str(path)})], net_channels="rgb"
    )
    hr = torch.rand(2, 3, 32, 32)
    batch = Batch(lr=hr[..., ::4, ::4], hr=hr)
    zero, _ = loss(hr.clone(), batch)
    assert float(zero) == 0.0
    sr = (hr + 0.2 * torch.randn_like(hr)).requires_grad_(True)
    value, parts = loss(sr, batch)
    value.backward()
    assert float(value) > 0 and "heatmap" in parts
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in HeatmapLoss(str(path)).parameters())


# --- PFSRNet's compressed FAN: a whole pickled module in torch's legacy format ---------------


def _legacy_fan_file(tmp_path: Path) -> tuple[Path, FanSqueeze]:
    """A file in the authors' form: torch.save(model) (legacy format) of a class that pickles as
    ``fan_model.fan_squeeze``, with the same module tree."""
    module = types.ModuleType("fan_model")

    class fan_squeeze(nn.Module):  # noqa: N801 - the authors' class name
        def __init__(self) -> None:
            super().__init__()
            ref = FanSqueeze()
            self.conv, self.layers = ref.conv, ref.layers

        def forward(self, x):
            return self.layers(self.conv(x))

    fan_squeeze.__module__, fan_squeeze.__qualname__ = "fan_model", "fan_squeeze"
    module.fan_squeeze = fan_squeeze
    sys.modules["fan_model"] = module
    try:
        torch.manual_seed(1)
        authors = fan_squeeze()
        for m in authors.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        path = tmp_path / "compressed.pth"
        torch.save(authors, path, _use_new_zipfile_serialization=False)
    finally:
        del sys.modules["fan_model"]
    reference = FanSqueeze(normalize=False)
    reference.load_state_dict(authors.state_dict())
    return path, reference.eval()


def test_fan_squeeze_loads_from_a_pickled_module_without_its_code(tmp_path) -> None:
    path, reference = _legacy_fan_file(tmp_path)
    with pytest.raises(pickle.UnpicklingError):  # what srkit does not do
        torch.load(path, weights_only=True)
    found = read_pickled_module(path)
    assert found.classes[""] == "fan_model.fan_squeeze"
    assert found.classes["layers.1"] == "torch.nn.modules.batchnorm.BatchNorm2d"
    assert found.attributes["layers.2"]["negative_slope"] == 0.01
    net = load_fan_squeeze(path, normalize=False)
    assert sum(p.numel() for p in net.parameters()) == 321_412
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(net(x), reference(x))
    assert torch.allclose(load_fan_squeeze(path)(x / 2 + 0.5), net(x), atol=1e-6)


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch boom-was-run",))


def test_a_pickle_that_would_run_code_only_gives_inert_records(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:  # the legacy layout: magic, protocol, info, object, keys
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, _Boom(), []):
            pickle.dump(obj, f, protocol=2)
    found = read_pickled_module(path)  # os.system is named, recorded, never called
    assert found.classes == {"": "posix.system"} and found.state == {}
    assert not (tmp_path / "boom-was-run").exists()
    with pytest.raises(WeightsError, match="not PFSRNet's compressed FAN"):
        load_fan_squeeze(path)
    with pytest.raises(WeightsError, match="not a legacy PyTorch"):
        path.write_bytes(b"PK\x03\x04 zip")
        read_pickled_module(path)


@pytest.mark.shared
def test_the_authors_fan_file_loads() -> None:
    if not FAN_FILE.is_file():
        pytest.skip(f"PFSRNet's FAN not found at {FAN_FILE} (set SRKIT_WEIGHTS)")
    net = load_fan_squeeze(FAN_FILE)
    assert sum(p.numel() for p in net.parameters()) == 321_412
    with torch.no_grad():
        maps = net(torch.rand(1, 3, 64, 64))
    assert maps.shape == (1, 68, 64, 64) and torch.isfinite(maps).all()


# --- the distillation task ----------------------------------------------------------------


def _faces(n: int = 16) -> FaceTrainSet:
    rng = np.random.default_rng(0)
    points = _points(n).numpy()
    hr = np.zeros((n, 3, 128, 128), np.uint8)
    for i in range(n):  # a bright dot at every landmark: something to learn
        hr[i] = rng.integers(0, 60, size=(3, 128, 128))
        for x, y in points[i].round().astype(int):
            hr[i, :, y - 1 : y + 2, x - 1 : x + 2] = 255
    names = [f"person_{i // 2}/person_{i // 2}_{i % 2 + 1:04d}.jpg" for i in range(n)]
    five = np.zeros((n, 5, 2), np.float32)
    emb = np.zeros((n, 128), np.float32)
    return FaceTrainSet("synthetic", names, hr, five, emb, emb, "test", points)


def _config(tmp_path: Path, iters: int = 6) -> Path:
    (tmp_path / "lfw").mkdir(exist_ok=True)
    config = {
        "name": "lm_tiny",
        "task": "landmarks",
        "arch": "heatmap_net",
        "scale": 1,
        "seed": 5,
        "data": {"train": [str(tmp_path / "lfw")], "batch_size": 4, "workers": 0},
        "val": {"every": iters},
        "train": {"iters": iters, "checkpoint_every": iters, "device": "cpu", "log_every": 1},
        "optimizers": {"g": {"lr": 2e-3}},
        "landmarks": {"features": 8, "blocks": 1, "val_people": 2, "val_faces": 4},
    }
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_landmark_task_trains_validates_and_exports(tmp_path, monkeypatch) -> None:
    faces = _faces()
    monkeypatch.setattr(landmark_task, "load_trainset", lambda *a, **k: faces)
    assert task_class("landmarks") is landmark_task.LandmarkTask
    result = train(load_experiment(_config(tmp_path)), tmp_path / "run", show_progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().split("\n")
               if line.strip()]  # fmt: skip
    assert len([r for r in records if "loss" in r]) == 6
    (scores,) = next(r["val"] for r in records if "val" in r).values()
    assert scores["n"] == 4 and scores["score"] == -scores["nme_hr"] > -10
    manifest = json.loads(Path(result.model_path).with_suffix(".json").read_text())
    assert manifest["purpose"] == "landmarks" and manifest["options"]["features"] == 8
    assert manifest["scores"]["validation"]["nme_hr"] == pytest.approx(scores["nme_hr"])
    assert load_heatmap_net(result.model_path)[0](torch.rand(1, 3, 128, 128)).shape[1] == 68


def test_landmark_samples_carry_heatmaps_of_their_moved_points(tmp_path, monkeypatch) -> None:
    faces = _faces()
    monkeypatch.setattr(landmark_task, "load_trainset", lambda *a, **k: faces)
    ctx = types.SimpleNamespace(show_progress=False, device=torch.device("cpu"))
    task = landmark_task.LandmarkTask(load_experiment(_config(tmp_path)), ctx)
    data = task.dataset()
    sample = data[(3, 1)]
    assert sample["lr"].shape == (3, 128, 128) and sample["heatmaps"].shape == (68, 32, 32)
    drawn = landmark_heatmaps(sample["landmarks"], 128, 32, 1.0)
    assert torch.allclose(sample["heatmaps"], drawn)
    assert torch.equal(data[(3, 1)]["lr"], sample["lr"])  # the same key, the same sample


def test_landmark_task_refuses_other_archs(tmp_path) -> None:
    config = yaml.safe_load(_config(tmp_path).read_text())
    config["arch"] = "repan"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="arch heatmap_net"):
        load_experiment(tmp_path / "bad.yaml")
