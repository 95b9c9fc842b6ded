"""Placeholder prompt pictures for the seeded worlds, until the default model ships real ones."""

from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image

SIZE = 64
PALETTES = {
    "coast": [(222, 204, 150), (60, 120, 200)],
    "village": [(96, 160, 72), (150, 100, 60)],
    "forest": [(40, 110, 50), (20, 70, 30)],
    "desert": [(230, 200, 130), (200, 160, 100)],
}


def placeholder_image(slug: str, seed: int = 0) -> np.ndarray:
    """A tile pattern in the world's two colours, uint8 (SIZE,SIZE,3)."""
    base, accent = PALETTES.get(slug, PALETTES["village"])
    rng = np.random.default_rng(zlib.crc32(slug.encode()) + seed)
    tiles = rng.random((SIZE // 8, SIZE // 8)) < 0.35  # (8,8) which tiles take the accent
    if slug == "coast":
        tiles[:, SIZE // 16 :] = True  # sea on the right half, sand on the left
    mask = np.kron(tiles, np.ones((8, 8), dtype=bool))  # (SIZE,SIZE)
    image = np.where(mask[..., None], np.array(accent), np.array(base))  # (SIZE,SIZE,3)
    noise = rng.integers(-12, 13, size=image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
    picture = Image.fromarray(image)
    if scale != 1:
        picture = picture.resize(
            (image.shape[1] * scale, image.shape[0] * scale), Image.Resampling.NEAREST
        )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
