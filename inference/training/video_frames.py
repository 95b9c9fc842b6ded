"""Frames of a gameplay video or a folder of numbered PNGs, at the model's size and play rate.

Any container and codec FFmpeg reads (mp4, webm, mkv, ...) is decoded by PyAV one frame at a
time, so a long video never sits in memory. Frames are centre-cropped to the model's aspect
ratio, area-resized to its frame size, and resampled to the play rate by sample-and-hold: output
frame k shows what the video showed at time k / rate (a 20 fps video maps one to one, a 60 fps
one keeps every third frame, a 10 fps one shows each frame twice). Every failure is a
VideoError whose message is one line naming the file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

# Decoded time may fall short of the container's stated duration by up to this many seconds
# (the last frame's own display time, rounding) before the file counts as truncated.
TRUNCATION_SLACK_S = 0.5
EPS = 1e-6


class VideoError(ValueError):
    """Input that cannot be read as gameplay frames; the message is one line."""


@dataclass
class SourceInfo:
    """What was read: for the summary the labeller prints."""

    path: Path
    kind: str  # "video" or "png folder"
    rate: float  # source frames per second
    size: tuple[int, int] = (0, 0)  # source width, height
    expected_seconds: float = 0.0  # stated duration, 0 when unknown
    frames_read: int = 0

    def describe(self, out_frames: int, rate: float, frame_size: tuple[int, int]) -> str:
        width, height = self.size
        _, _, crop_h, crop_w = centre_crop(height, width, frame_size)
        crop = (
            "no crop" if (crop_w, crop_h) == self.size else f"centre-cropped to {crop_w}x{crop_h}"
        )
        return (
            f"{self.path}: {self.kind}, {self.frames_read} frames at {self.rate:.3g} fps, "
            f"{width}x{height} -> {out_frames} frames at {rate:g} fps, "
            f"{frame_size[1]}x{frame_size[0]} ({crop}, area resize)"
        )


def _numbered(path: Path) -> list[Path]:
    def key(p: Path) -> tuple[int, str]:
        digits = re.findall(r"\d+", p.stem)
        return (int(digits[-1]) if digits else -1, p.name)

    return sorted((p for p in path.iterdir() if p.suffix.lower() == ".png"), key=key)


def _png_frames(
    files: list[Path], rate: float, info: SourceInfo
) -> Iterator[tuple[float, np.ndarray]]:
    for i, file in enumerate(files):
        try:
            with Image.open(file) as img:
                frame = np.asarray(img.convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            why = "not an image" if isinstance(exc, UnidentifiedImageError) else str(exc)
            raise VideoError(f"{file}: not a readable PNG ({why})") from None
        if not info.frames_read:
            info.size = (frame.shape[1], frame.shape[0])
        elif (frame.shape[1], frame.shape[0]) != info.size:
            raise VideoError(
                f"{file}: {frame.shape[1]}x{frame.shape[0]}, not {info.size[0]}x"
                f"{info.size[1]} like the frames before it"
            )
        info.frames_read += 1
        yield i / rate, frame


def _video_frames(container, info: SourceInfo) -> Iterator[tuple[float, np.ndarray]]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    last = 0.0
    try:
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else info.frames_read / info.rate
            if info.frames_read == 0:
                info.size = (frame.width, frame.height)
            last = t
            info.frames_read += 1
            yield t, frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as exc:
        raise VideoError(
            f"{info.path}: truncated or corrupt after {info.frames_read} frames ({exc})"
        ) from None
    finally:
        container.close()
    if not info.frames_read:
        raise VideoError(f"{info.path}: the video stream holds no frames")
    shown = last + 1 / info.rate
    if info.expected_seconds and shown + TRUNCATION_SLACK_S < info.expected_seconds:
        raise VideoError(
            f"{info.path}: truncated: it decodes to {shown:.1f} s of the "
            f"{info.expected_seconds:.1f} s its header states"
        )


def open_frames(path: str | Path, folder_rate: float) -> tuple[SourceInfo, Iterator]:
    """(info, iterator of (seconds, RGB uint8 (H,W,3))) for a video file or a PNG folder."""
    path = Path(path)
    if path.is_dir():
        files = _numbered(path)
        if not files:
            raise VideoError(f"{path}: no PNG frames in this folder")
        info = SourceInfo(path, "png folder", folder_rate)
        info.expected_seconds = len(files) / folder_rate
        return info, _png_frames(files, folder_rate, info)
    if not path.exists():
        raise VideoError(f"{path}: no such file or folder")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"{path}: not a video PyAV can read ({exc})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: holds no video stream")
    stream = container.streams.video[0]
    rate = float(stream.average_rate or stream.guessed_rate or 0)
    if rate <= 0:
        container.close()
        raise VideoError(f"{path}: the video stream states no frame rate")
    info = SourceInfo(path, "video", rate)
    if stream.duration is not None and stream.time_base is not None:
        info.expected_seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        info.expected_seconds = container.duration / 1_000_000  # AV_TIME_BASE
    return info, _video_frames(container, info)


def centre_crop(h: int, w: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the largest centre crop with the aspect ratio of size."""
    target_h, target_w = size
    crop_w = min(w, round(h * target_w / target_h))
    crop_h = min(h, round(w * target_h / target_w))
    return (h - crop_h) // 2, (w - crop_w) // 2, crop_h, crop_w


def fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop to the aspect ratio of size (H, W), then area-resize: uint8 (H,W,3)."""
    top, left, crop_h, crop_w = centre_crop(*frame.shape[:2], size)
    img = Image.fromarray(frame[top : top + crop_h, left : left + crop_w])
    if (crop_h, crop_w) != size:
        img = img.resize((size[1], size[0]), Image.Resampling.BOX)
    return np.asarray(img)


def resampled(
    frames: Iterator[tuple[float, np.ndarray]], rate: float, source_rate: float
) -> Iterator[np.ndarray]:
    """Sample-and-hold at `rate`: output k is the last source frame shown at time k / rate."""
    k, start, previous, previous_t = 0, None, None, 0.0
    for t, frame in frames:
        if start is None:
            start = t
        t -= start
        if t < previous_t - EPS:  # out-of-order timestamps: trust the order, not the clock
            t = previous_t
        while previous is not None and k / rate < t - EPS:
            yield previous
            k += 1
        previous, previous_t = frame, t
    if previous is None:
        return
    end = previous_t + 1 / source_rate  # the last frame is shown for one source frame time
    while k / rate < end - EPS:
        yield previous
        k += 1
