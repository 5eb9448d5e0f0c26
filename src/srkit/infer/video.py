"""Video upscaling with PyAV (FFmpeg): every frame through the tiled ``Upscaler``, audio copied.

``upscale_video(upscaler, "clip.mp4", "clip_x4.mp4")`` decodes the first video stream, upscales
each frame (tiled, on whatever backend the ``Upscaler`` runs), encodes it (H.264 in MP4/MOV/MKV,
VP9 in WebM, MPEG-4 in AVI) with the source's frame timestamps, so the frame rate and any
variable timing are kept, and copies every audio stream packet for packet (no re-encoding).
``frames=(A, B)`` keeps frames ``A`` to ``B - 1`` (0-based, like Python slices); the audio packets
of that time span are copied too and both start at 0. The file appears only when complete
(``srkit.common.files.atomic_path``).

Needs ``pip install 'srkit[video]'`` (PyAV ships its own FFmpeg).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srkit.common.files import atomic_path

if TYPE_CHECKING:
    from srkit.infer.upscaler import Upscaler

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
_CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
}
_CODECS = {"mp4": "libx264", "mov": "libx264", "matroska": "libx264", "webm": "libvpx-vp9"}


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def import_av() -> Any:
    try:
        import av
    except ImportError:
        raise ImportError(
            "video needs PyAV: pip install 'srkit[video]' (it brings its own FFmpeg)"
        ) from None
    return av


def parse_frames(spec: str | None) -> tuple[int, int | None]:
    """``"A:B"`` -> ``(A, B)``: frames A to B - 1, 0-based; ``"A:"`` to the end, ``":B"`` from 0."""
    if spec is None or spec.strip() in ("", ":"):
        return 0, None
    first, sep, last = spec.partition(":")
    try:
        if not sep:
            raise ValueError
        start = int(first) if first.strip() else 0
        stop = int(last) if last.strip() else None
    except ValueError:
        raise ValueError(f"--frames {spec!r}: expected A:B (frames A to B-1, 0-based)") from None
    if start < 0 or (stop is not None and stop <= start):
        raise ValueError(f"--frames {spec!r}: need 0 <= A < B")
    return start, stop


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds (``probe``)."""

    frames: int  # decoded frames of the first video stream
    fps: float  # its average frame rate
    duration: float  # seconds from the first frame to the end of the last
    width: int
    height: int
    codec: str
    audio: tuple[tuple[str, int, float], ...]  # (codec, sample rate, seconds) per audio stream


@dataclass(frozen=True)
class VideoResult:
    path: Path
    frames: int
    seconds: float
    width: int
    height: int
    audio_streams: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _open_input(av: Any, source: Path) -> Any:
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such video file")
    try:
        container = av.open(str(source))
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise ValueError(f"{source}: not a readable video ({error})") from None
    if not container.streams.video:
        container.close()
        raise ValueError(f"{source}: holds no video stream")
    return container


def probe(source: str | os.PathLike) -> VideoInfo:
    """Count the frames (by decoding) and the audio of ``source``."""
    av = import_av()
    source = Path(source)
    with _open_input(av, source) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * f.time_base) for f in container.decode(stream) if f.pts is not None]
        audio = []
        for a in container.streams.audio:
            seconds = float(a.duration * a.time_base) if a.duration else 0.0
            audio.append((a.codec_context.name, int(a.codec_context.sample_rate), seconds))
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        step = 1.0 / float(rate) if rate else 0.0
        duration = (times[-1] - times[0] + step) if times else 0.0
        return VideoInfo(
            frames=len(times),
            fps=float(rate),
            duration=duration,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            codec=stream.codec_context.name,
            audio=tuple(audio),
        )


def _frame_estimate(stream: Any, start: int, stop: int | None) -> int | None:
    total = stream.frames or None
    if total is None and stream.duration and stream.average_rate:
        total = round(float(stream.duration * stream.time_base * stream.average_rate))
    if stop is not None:
        total = stop if total is None else min(total, stop)
    return None if total is None else max(total - start, 0)


def upscale_video(
    upscaler: Upscaler,
    source: str | os.PathLike,
    target: str | os.PathLike,
    *,
    frames: tuple[int, int | None] = (0, None),
    overwrite: bool = False,
    crf: int = 18,
    on_start: Callable[[int | None], None] | None = None,
    on_frame: Callable[[], None] | None = None,
) -> VideoResult:
    """Upscale ``source`` into ``target`` (container from its extension); see the module doc.

    ``on_start(total_frames_or_None)`` once the input is open, ``on_frame()`` per frame written.
    """
    av = import_av()
    source, target = Path(source), Path(target)
    fmt = _CONTAINERS.get(target.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"-o {target}: not a video file name (use {', '.join(sorted(_CONTAINERS))})"
        )
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target}: exists (pass --overwrite to replace it)")
    if source.resolve() == target.resolve():
        raise ValueError(f"{target}: the output would overwrite the input")
    start, stop = frames
    began = time.perf_counter()
    with _open_input(av, source) as inp:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        s = upscaler.scale
        width, height = vin.codec_context.width * s, vin.codec_context.height * s
        if on_start is not None:
            on_start(_frame_estimate(vin, start, stop))
        with atomic_path(target) as temporary:
            try:
                written, audio = _transcode(
                    av, inp, vin, upscaler, temporary, fmt, (width, height), frames, crf, on_frame
                )
            except av.error.FFmpegError as error:
                raise ValueError(f"{source}: {error}") from None
            if written == 0:
                raise ValueError(f"{source}: no frames in --frames {start}:{stop or ''}")
    return VideoResult(target, written, time.perf_counter() - began, width, height, audio)


def _transcode(av, inp, vin, upscaler, temporary, fmt, size, frames, crf, on_frame):
    start, stop = frames
    width, height = size
    with av.open(str(temporary), "w", format=fmt) as out:
        codec = _CODECS.get(fmt, "mpeg4")
        rate = vin.average_rate or vin.guessed_rate or Fraction(25)
        vout = out.add_stream(codec, rate=rate)
        vout.width, vout.height = width, height
        # 4:2:0 needs even sizes (x3 of an odd size is odd): 4:4:4 then
        vout.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        vout.time_base = vin.time_base
        vout.codec_context.time_base = vin.time_base
        if codec in ("libx264", "libvpx-vp9"):
            vout.options = {"crf": str(crf)}
            if codec == "libvpx-vp9":
                vout.options["b:v"] = "0"
        else:
            vout.bit_rate = max(2_000_000, width * height * 8)
        audio = {a.index: out.add_stream_from_template(a) for a in inp.streams.audio}
        pending: list[Any] = []  # audio packets waiting for the video to reach their time
        t_start: float | None = None  # seconds of the first kept frame
        t_stop: float | None = None  # seconds of the first frame past the range
        start_pts = 0
        index = written = 0
        done_audio: set[int] = set()

        def flush_audio(until: float | None) -> None:
            keep = []
            for packet in pending:
                t = float(packet.pts * packet.time_base)
                if until is not None and t > until:
                    keep.append(packet)
                    continue
                if t >= (t_start or 0.0) - 1e-9 and (t_stop is None or t < t_stop - 1e-9):
                    shift = round((t_start or 0.0) / packet.time_base)
                    packet.pts -= shift
                    if packet.dts is not None:
                        packet.dts -= shift
                    packet.stream = audio[packet.stream.index]
                    out.mux(packet)
            pending[:] = keep

        for packet in inp.demux(vin, *inp.streams.audio):
            if packet.stream.type == "audio":
                if packet.pts is None:
                    continue
                if t_stop is not None and float(packet.pts * packet.time_base) >= t_stop:
                    done_audio.add(packet.stream.index)
                    if len(done_audio) == len(audio):
                        break  # every audio stream is past the range too
                    continue
                pending.append(packet)
                continue
            if t_stop is not None:
                if not audio:
                    break
                continue  # past the range: only the audio is still read, up to t_stop
            for frame in packet.decode():
                if frame.pts is None:
                    continue
                if index < start:
                    index += 1
                    continue
                t = float(frame.pts * frame.time_base)
                if stop is not None and index >= stop:
                    t_stop = t
                    break
                if t_start is None:
                    t_start, start_pts = t, frame.pts
                pixels = upscaler.upscale_array(frame.to_ndarray(format="rgb24"))
                new = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                new.pts = frame.pts - start_pts
                new.time_base = frame.time_base
                for encoded in vout.encode(new):
                    out.mux(encoded)
                written += 1
                index += 1
                if on_frame is not None:
                    on_frame()
                flush_audio(t)
        for encoded in vout.encode():
            out.mux(encoded)
        if t_start is not None:
            flush_audio(None)
    return written, len(audio)
