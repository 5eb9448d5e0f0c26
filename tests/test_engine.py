"""srkit.bench.engine: the one evaluation loop and its plugin interface."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from srkit.bench.engine import (
    BICUBIC,
    DegradationStep,
    Evaluation,
    Metric,
    PairStep,
    PsnrSsim,
    Sample,
    SkipImage,
)
from srkit.bench.protocol import matlab_bicubic_lr
from srkit.data.builtin import bundled_set5
from srkit.data.sources import open_source
from srkit.models import resolve_model


class CentreCrop(PairStep):
    """A cacheable pair step: a fixed-size centre crop, its mean kept as an extra."""

    chunk = 2

    def __init__(self, size: int = 48) -> None:
        self.size = size
        self.calls = 0

    def fingerprint(self) -> str:
        return f"centre{self.size}"

    def prepare(self, source, names):
        self.calls += len(names)
        out = []
        for name in names:
            if name.startswith("woman"):
                out.append(SkipImage(f"{name}: not wanted"))
                continue
            rgb = source.read(name).to_rgb8()
            top, left = (rgb.shape[0] - self.size) // 2, (rgb.shape[1] - self.size) // 2
            crop = rgb[top : top + self.size, left : left + self.size]
            hr = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)
            out.append(Sample(name, hr, extras={"mean": np.float64(crop.mean())}))
        return out


class MeanError(Metric):
    """A metric with a reference (the HR's brightness) and a dataset-level summary."""

    columns = ("brightness_error",)

    def fingerprint(self) -> str:
        return "mean-error"

    def reference(self, hr, samples):
        return {"hr_mean": hr.double().mean(dim=(1, 2, 3)).numpy()}

    def score(self, sr, hr, samples, scale):
        ref = np.array([s.extras["hr_mean"] for s in samples])
        error = np.abs(sr.double().mean(dim=(1, 2, 3)).numpy() - ref)
        return {"brightness_error": error, "sr_mean": sr.double().mean(dim=(1, 2, 3)).numpy()}

    def summarize(self, result):
        return {"worst": float(result.values("brightness_error").max())}


def _noisy(hr, scale, first):
    """Bicubic plus noise seeded by each sample's index (so batching cannot change it)."""
    lr = matlab_bicubic_lr(hr, scale).to(torch.int16)
    for i in range(len(lr)):
        gen = torch.Generator().manual_seed(first + i)
        lr[i] += torch.randint(-8, 9, lr[i].shape, generator=gen, dtype=torch.int16)
    return lr.clamp(0, 255).to(torch.uint8)


def test_sources_x_degradations_x_models_x_metrics(tmp_path):
    models = [(2, resolve_model("bicubic", 2)), (4, resolve_model("bicubic", 4))]
    degradations = [BICUBIC, DegradationStep(_noisy, "noise")]
    step = CentreCrop()
    seen: list[int] = []
    evaluation = Evaluation(
        models,
        metrics=[PsnrSsim(border=0), MeanError()],
        degradations=degradations,
        pair_step=step,
        batch=3,
        cache_root=tmp_path / "cache",
        on_scored=seen.append,
    )
    source = open_source(bundled_set5())
    results = evaluation.run(source)
    assert [(r.dataset, r.model, r.scale) for r in results] == [
        ("Set5", "bicubic", 2), ("Set5", "bicubic", 4),
        ("Set5+noise", "bicubic", 2), ("Set5+noise", "bicubic", 4),
    ]  # fmt: skip
    assert sum(seen) == len(source) * 4  # every (image, degradation, model) step, skipped too
    for r in results:
        assert r.names == ["baby.png", "bird.png", "butterfly.png", "head.png"]
        assert set(r.skipped) == {"woman.png"} and "not wanted" in r.skipped["woman.png"]
        assert r.heights == [48] * 4 and r.kept_array("sr_mean").shape == (4,)
        assert r.summary["worst"] == pytest.approx(r.values("brightness_error").max())
        assert list(r.records())[0].keys() == {
            "image", "height", "width", "psnr", "ssim", "brightness_error"
        }  # fmt: skip
    clean, noisy = results[0].values("psnr"), results[2].values("psnr")
    assert (noisy < clean - 0.1).all()
    # the cache: a second evaluation prepares nothing and scores the same
    calls = step.calls
    again = Evaluation(
        models, metrics=[PsnrSsim(border=0), MeanError()], degradations=degradations,
        pair_step=step, batch=1, workers=1, cache_root=tmp_path / "cache",
    )  # fmt: skip
    prepared = again.prepare(source)
    assert prepared.from_cache and step.calls == calls and len(prepared) == 4
    for a, b in zip(again.score(prepared), results, strict=True):
        assert a.columns == b.columns  # batching and workers do not change a figure


def test_the_bench_protocol_in_the_engine_matches_the_published_bicubic():
    evaluation = Evaluation([(3, resolve_model("bicubic", 3))], workers=2)
    (result,) = evaluation.run(open_source(bundled_set5()))
    assert result.dataset == "Set5" and result.n == 5
    assert float(result.values("psnr").mean()) == pytest.approx(30.41, abs=0.02)


def test_bad_images_stop_the_run_unless_skip_bad(tmp_path):
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    model = [(2, resolve_model("bicubic", 2))]
    with pytest.raises(ValueError, match=r"b\.png"):
        Evaluation(model).run(open_source(tmp_path))
    (result,) = Evaluation(model, skip_bad=True).run(open_source(tmp_path))
    assert result.names == ["a.png"] and list(result.skipped) == ["b.png"]
    with pytest.raises(ValueError, match="no model"):
        Evaluation([]).run(open_source(tmp_path))
