"""Starting worlds: scenes recorded from the teacher game, or placeholders when none exist."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from webapp.worlds.models import PromptImage, World
from webapp.worlds.placeholders import placeholder_image, png_bytes

logger = logging.getLogger(__name__)

# Oasis's starting worlds, drawn as placeholder tiles when no recorded scenes are shipped.
PLACEHOLDERS = [
    ("coast", "Coast", "Sand meets the sea; walk the shoreline."),
    ("village", "Village", "Open fields around a few huts."),
    ("forest", "Forest", "Dense trees and narrow clearings."),
    ("desert", "Desert", "Dunes as far as you can see."),
]


@dataclass(frozen=True)
class Scene:
    """One starting world: its text, thumbnail and prompt frames as PNG bytes."""

    slug: str
    name: str
    description: str
    thumbnail: bytes
    prompts: tuple[bytes, ...]


class SceneError(ValueError):
    """The scene index or one of its pictures is missing or malformed."""


def recorded_scenes(folder: Path) -> list[Scene]:
    """Scenes listed in `folder/index.json` (written by inference.training's scene recorder)."""
    index = folder / "index.json"
    try:
        entries = json.loads(index.read_text())
        return [
            Scene(
                slug=e["slug"],
                name=e["title"],
                description=e.get("description", ""),
                thumbnail=(folder / e["thumbnail"]).read_bytes(),
                prompts=tuple((folder / p).read_bytes() for p in e["prompt_frames"]),
            )
            for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SceneError(f"cannot read scenes from {index}: {exc}") from exc


def placeholder_scenes() -> list[Scene]:
    scenes = []
    for slug, name, description in PLACEHOLDERS:
        image = placeholder_image(slug)
        scenes.append(
            Scene(slug, name, description, png_bytes(image, scale=2), (png_bytes(image),))
        )
    return scenes


def install(scenes: list[Scene], pool) -> list[str]:
    """Create or refresh the listed worlds; seeded worlds not among them are unlisted."""
    changed = []
    for order, scene in enumerate(scenes):
        world, created = World.objects.update_or_create(
            slug=scene.slug,
            owner=None,
            defaults={
                "name": scene.name,
                "description": scene.description,
                "pool": pool,
                "thumbnail_png": scene.thumbnail,
                "sort_order": order,
                "listed": True,
            },
        )
        world.prompts.all().delete()
        PromptImage.objects.bulk_create(
            PromptImage(world=world, index=i, png=png) for i, png in enumerate(scene.prompts)
        )
        changed.append(f"{'seeded' if created else 'refreshed'} world {scene.slug}")
    slugs = [scene.slug for scene in scenes]
    stale = World.objects.filter(owner=None, listed=True).exclude(slug__in=slugs)
    for slug in stale.values_list("slug", flat=True):
        changed.append(f"unlisted world {slug}")
    stale.update(listed=False)
    return changed
