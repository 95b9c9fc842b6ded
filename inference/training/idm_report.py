"""How well an inverse-dynamics model labels held-out play: accuracy, confusion, confidence.

Some actions leave no trace in the picture: "do" on grass, a craft without the materials, a
move into a wall the player already faces. Their frames look exactly like a no-op's, so no
labeller can tell them apart (and a world model gains nothing from knowing them). The report
therefore gives accuracy on every frame and on the frames that changed at all, and per action
both how often it was recognised (recall) and how often a label of it was right (precision).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)


@dataclass
class IDMReport:
    """Figures of one evaluation; `confusion[i, j]` counts true action i labelled j."""

    names: tuple[str, ...]
    confusion: np.ndarray  # (A,A) int
    accuracy: float
    changed_accuracy: float
    changed_share: float
    confident: float  # the threshold
    confident_share: float
    confident_accuracy: float
    unsure_accuracy: float

    def recall(self) -> np.ndarray:
        return np.diag(self.confusion) / np.maximum(self.confusion.sum(1), 1)

    def precision(self) -> np.ndarray:
        return np.diag(self.confusion) / np.maximum(self.confusion.sum(0), 1)

    def summary(self) -> dict:
        """JSON-ready figures (stored in the model file and report.json)."""
        counts = self.confusion.sum(1)
        return {
            "accuracy": round(self.accuracy, 4),
            "changed_accuracy": round(self.changed_accuracy, 4),
            "changed_share": round(self.changed_share, 4),
            "confident_threshold": self.confident,
            "confident_share": round(self.confident_share, 4),
            "confident_accuracy": round(self.confident_accuracy, 4),
            "unsure_accuracy": round(self.unsure_accuracy, 4),
            "per_action": {
                name: {
                    "frames": int(n),
                    "recall": round(float(r), 4),
                    "precision": round(float(p), 4),
                }
                for name, n, r, p in zip(
                    self.names, counts, self.recall(), self.precision(), strict=True
                )
            },
        }

    def table(self) -> str:
        """Per-action figures and the confusion counts as plain text."""
        counts = self.confusion.sum(1)
        lines = [
            f"accuracy {self.accuracy:.1%} on every frame, {self.changed_accuracy:.1%} on the "
            f"{self.changed_share:.0%} that changed; confidence >= {self.confident:g}: "
            f"{self.confident_share:.1%} of frames, {self.confident_accuracy:.1%} right "
            f"(below: {self.unsure_accuracy:.1%})",
            f"{'action':<20} {'frames':>7} {'recall':>7} {'precision':>9}",
        ]
        for name, n, r, p in zip(self.names, counts, self.recall(), self.precision(), strict=True):
            if n or self.confusion[:, self.names.index(name)].sum():
                lines.append(f"{name:<20} {n:>7} {r:>7.1%} {p:>9.1%}")
        shown = [
            i
            for i in range(len(self.names))
            if self.confusion[i].sum() or self.confusion[:, i].sum()
        ]
        lines.append(
            "confusion (rows: true, columns: label): "
            + " ".join(f"{i}={self.names[i]}" for i in shown)
        )
        lines.append("      " + "".join(f"{i:>6}" for i in shown))
        for i in shown:
            lines.append(f"{i:>6}" + "".join(f"{self.confusion[i, j]:>6}" for j in shown))
        return "\n".join(lines)


def evaluate_predictions(
    probs: np.ndarray,
    labels: np.ndarray,
    changed: np.ndarray,
    names: Sequence[str],
    confident: float = 0.9,
) -> IDMReport:
    """probs (N,A) against true labels (N,); changed (N,) marks frames that differ from t-1."""
    predicted = probs.argmax(1)
    confidence = probs.max(1)
    right = predicted == labels
    confusion = np.zeros((len(names), len(names)), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    sure = confidence >= confident

    def mean(mask: np.ndarray) -> float:
        return float(right[mask].mean()) if mask.any() else float("nan")

    return IDMReport(
        tuple(names),
        confusion,
        float(right.mean()),
        mean(changed),
        float(changed.mean()),
        confident,
        float(sure.mean()),
        mean(sure),
        mean(~sure),
    )


def draw_confusion(path: str | Path, report: IDMReport, cell: int = 30) -> Path:
    """The confusion table as a PNG: rows normalised to the true action's count, counts inside."""
    shown = [
        i
        for i in range(len(report.names))
        if report.confusion[i].sum() or report.confusion[:, i].sum()
    ]
    matrix = report.confusion[np.ix_(shown, shown)]
    rows = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    label_w, top = 150, 150
    size = (label_w + cell * len(shown) + 10, top + cell * len(shown) + 30)
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 10), f"IDM on held-out play: {report.accuracy:.1%} right", fill="black")
    for a, i in enumerate(shown):
        y = top + a * cell
        draw.text((10, y + cell // 3), report.names[i][:22], fill="black")
        # Column names run downwards, one character a line, above their column.
        x = label_w + a * cell
        draw.text((x + 4, 30), "\n".join(report.names[i][:11]), fill="black", spacing=0)
        for b in range(len(shown)):
            shade = int(255 * (1 - rows[a, b]))
            box = (label_w + b * cell, y, label_w + (b + 1) * cell - 1, y + cell - 1)
            draw.rectangle(box, fill=(shade, shade, 255), outline=(220, 220, 220))
            if matrix[a, b]:
                ink = "white" if rows[a, b] > 0.5 else "black"
                draw.text((box[0] + 2, box[1] + cell // 3), str(matrix[a, b]), fill=ink)
    draw.text((10, size[1] - 22), "rows: true action; columns: IDM label", fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
