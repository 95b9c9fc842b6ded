"""PNG outputs without matplotlib: loss curves and labelled image grids, drawn with Pillow."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average (window >= 1)."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_curves(
    path: str | Path,
    curves: Mapping[str, Sequence[tuple[int, float]]],
    title: str,
    log_y: bool = True,
    size: tuple[int, int] = (720, 360),
    x_unit: str = "steps",
) -> Path:
    """Line chart of (step, value) series, smoothed, on a log y axis by default."""
    W, H = size
    left, right, top, bottom = 70, 20, 30, 40
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    draw.text((left, 8), title, fill="black")
    series = {k: v for k, v in curves.items() if len(v)}
    if not series:
        img.save(path)
        return Path(path)

    def f(y: float) -> float:
        return math.log10(max(y, 1e-12)) if log_y else y

    xs = [x for pts in series.values() for x, _ in pts]
    ys = [f(y) for pts in series.values() for _, y in pts]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = min(ys), max(max(ys), min(ys) + 1e-6)
    draw.rectangle([left, top, W - right, H - bottom], outline="black")
    for i in range(5):  # y ticks
        yv = y0 + (y1 - y0) * i / 4
        py = H - bottom - (H - top - bottom) * i / 4
        draw.text((4, py - 6), f"{10**yv if log_y else yv:.3g}", fill="black")
    draw.text((left, H - bottom + 8), f"{x0}", fill="black")
    draw.text((W - right - 60, H - bottom + 8), f"{x1} {x_unit}", fill="black")
    for n, (name, pts) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        vals = smooth([f(y) for _, y in pts], max(1, len(pts) // 100))
        line = [
            (
                left + (W - left - right) * (x - x0) / (x1 - x0),
                H - bottom - (H - top - bottom) * (v - y0) / (y1 - y0),
            )
            for (x, _), v in zip(pts, vals, strict=True)
        ]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        draw.text((W - right - 200, top + 6 + 14 * n), f"{name}: {pts[-1][1]:.4g}", fill=colour)
    img.save(path)
    return Path(path)


def save_grid(
    path: str | Path,
    rows: Sequence[Sequence[np.ndarray]],
    labels: Sequence[str] = (),
    scale: int = 2,
) -> Path:
    """Rows of uint8 (H,W,3) images, each row labelled on its left; upscaled without blur."""
    h, w = rows[0][0].shape[:2]
    label_w, pad = 110, 2
    cols = max(len(r) for r in rows)
    canvas = Image.new(
        "RGB", (label_w + cols * (w * scale + pad), len(rows) * (h * scale + pad)), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        y = r * (h * scale + pad)
        if r < len(labels):
            draw.text((4, y + h * scale // 2 - 6), labels[r], fill="black")
        for c, image in enumerate(row):
            tile = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize(
                (w * scale, h * scale), Image.NEAREST
            )
            canvas.paste(tile, (label_w + c * (w * scale + pad), y))
    canvas.save(path)
    return Path(path)
