"""srkit upscale clip.mp4: frames upscaled with the Upscaler, timestamps kept, audio copied."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="video needs PyAV: pip install 'srkit[video]'")

from srkit.infer import Upscaler  # noqa: E402
from srkit.infer.video import parse_frames, probe, upscale_video  # noqa: E402


def make_clip(path: Path, frames: int = 12, fps: int = 12, w: int = 64, h: int = 48) -> Path:
    """A moving pattern in H.264 with a 440 Hz AAC mono track of the same length."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"crf": "10"}
        audio = container.add_stream("aac", rate=48000)
        audio.layout = "mono"
        for i in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[:, :, 0] = (np.arange(w) * 4 + i * 10) % 256
            img[:, :, 1] = np.arange(h)[:, None] * 5
            img[8:20, (i * 4) % w : (i * 4) % w + 10] = 255
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        n = 48000 * frames // fps
        tone = (0.3 * np.sin(2 * math.pi * 440 * np.arange(n) / 48000)).astype(np.float32)[None]
        for k in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(
                tone[:, k : k + 1024].copy(), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 48000, k
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return path


def frames_and_audio(path: Path) -> tuple[list[np.ndarray], list[float], list[bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, times = [], []
        for f in container.decode(stream):
            frames.append(f.to_ndarray(format="rgb24"))
            times.append(float(f.pts * f.time_base))
    with av.open(str(path)) as container:
        audio = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]
    return frames, times, audio


def test_video_keeps_frames_timing_and_audio(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    upscaler = Upscaler(None)  # srkit's default x4 model, tiled as for images
    result = upscale_video(upscaler, clip, tmp_path / "clip_x4.mp4")
    source, out = probe(clip), probe(tmp_path / "clip_x4.mp4")
    assert result.frames == out.frames == source.frames == 12
    assert (out.width, out.height) == (256, 192) and out.fps == source.fps == 12
    assert out.duration == pytest.approx(source.duration, abs=1e-6)
    assert out.audio == source.audio  # codec, sample rate, length
    in_frames, in_times, in_audio = frames_and_audio(clip)
    out_frames, out_times, out_audio = frames_and_audio(tmp_path / "clip_x4.mp4")
    assert out_times == pytest.approx(in_times, abs=1e-6)
    # the packets byte for byte (copied, not re-encoded); AAC's priming packet, timed before
    # the first frame, may be left out
    assert len(in_audio) - len(out_audio) in (0, 1)
    assert out_audio == in_audio[len(in_audio) - len(out_audio) :]
    for lr, sr in zip(in_frames, out_frames, strict=True):  # H.264 at crf 18: close, not equal
        expected = upscaler.upscale_array(lr).astype(np.float64)
        mse = np.mean((sr.astype(np.float64) - expected) ** 2)
        assert 10 * math.log10(255**2 / mse) > 30
    # a part: frames 3..8, starting at 0, with the audio of that span
    part = upscale_video(upscaler, clip, tmp_path / "part.mp4", frames=parse_frames("3:9"))
    info = probe(tmp_path / "part.mp4")
    assert part.frames == info.frames == 6 and info.duration == pytest.approx(0.5, abs=1e-6)
    assert abs(info.audio[0][2] - 0.5) <= 1024 / 48000 + 1e-6  # one AAC frame of slack
    _, times, _ = frames_and_audio(tmp_path / "part.mp4")
    assert times[0] == 0 and times == pytest.approx(in_times[:6], abs=1e-6)


def test_video_errors_are_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from srkit.cli import app

    (tmp_path / "fake.mp4").write_bytes(b"not a video at all")
    run = CliRunner().invoke(app, ["upscale", str(tmp_path / "fake.mp4"), "-o", "x.mp4"])
    assert run.exit_code == 1 and "not a readable video" in run.output
    assert not (tmp_path / "x.mp4").exists()
    clip = make_clip(tmp_path / "c.mp4", frames=4)
    run = CliRunner().invoke(
        app, ["upscale", str(clip), "-o", str(tmp_path / "o.mp4"), "--frames", "5:2"]
    )
    assert run.exit_code == 1 and "need 0 <= A < B" in run.output
    run = CliRunner().invoke(
        app,
        [
            "upscale",
            str(clip),
            "-o",
            str(tmp_path / "o.mp4"),
            "--frames",
            "1:3",
            "--model",
            "bicubic",
            "--scale",
            "2",
        ],
    )
    assert run.exit_code == 0, run.output
    assert "2 frames 128x96, 1 audio stream(s) copied" in run.output
