"""Record starting scenes ("worlds") from the teacher: prompt frames and a thumbnail each.

For every scene kind the script scans Crafter worlds for a spot whose view (9x7 tiles around the
player) matches a recipe, places the player there in daylight, lets the world tick a few no-op
frames (the prompt the engine starts from) and writes

    models/worlds/<slug>/prompt_0.png ... prompt_{P-1}.png   64x64, oldest first
    models/worlds/<slug>/thumbnail.png                       256x256, nearest-neighbour
    models/worlds/index.json                                 slug, title, description, seed

    python -m inference.training.worlds --out models/worlds
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .teachers import CrafterTeacher

logger = logging.getLogger(__name__)

VIEW_W, VIEW_H = 9, 7  # world tiles shown around the player (the rest is the inventory)
WALKABLE = {"grass", "sand", "path"}


@dataclass(frozen=True)
class Scene:
    """A recipe: minimum share of each material in view, and materials that must be absent."""

    slug: str
    title: str
    description: str
    at_least: dict[str, float]
    at_most: dict[str, float]


SCENES = (
    Scene(
        "coast",
        "Coast",
        "A sandy shore on open water.",
        {"water": 0.25, "sand": 0.15},
        {"lava": 0.0},
    ),
    Scene(
        "forest",
        "Forest",
        "Dense woods to chop through.",
        {"tree": 0.3, "grass": 0.3},
        {"lava": 0.0, "water": 0.05},
    ),
    Scene(
        "meadow",
        "Meadow",
        "Open grassland, room to build a village.",
        {"grass": 0.85},
        {"tree": 0.06, "water": 0.0, "stone": 0.0},
    ),
    Scene(
        "mountain",
        "Mountain",
        "Bare stone with tunnels and ore: dig in.",
        {"stone": 0.4, "path": 0.05},
        {"lava": 0.0, "water": 0.0},
    ),
    Scene("dunes", "Dunes", "Wide sand flats by a lake.", {"sand": 0.45}, {"lava": 0.0}),
)


def view_shares(mat_map: np.ndarray, names: dict[int, str], x: int, y: int) -> dict[str, float]:
    """Share of each material in the 9x7 view centred on tile (x, y)."""
    window = mat_map[x - VIEW_W // 2 : x + VIEW_W // 2 + 1, y - VIEW_H // 2 : y + VIEW_H // 2 + 1]
    ids, counts = np.unique(window, return_counts=True)
    return {names[int(i)]: c / window.size for i, c in zip(ids, counts, strict=True)}


def matches(scene: Scene, shares: dict[str, float]) -> bool:
    """Whether a view's shares satisfy a recipe."""
    return all(shares.get(m, 0) >= v for m, v in scene.at_least.items()) and all(
        shares.get(m, 0) <= v for m, v in scene.at_most.items()
    )


def find_scene(scene: Scene, seeds: range, rng: np.random.Generator) -> tuple[int, tuple] | None:
    """(seed, tile) of a matching spot, trying worlds in seed order."""
    teacher = CrafterTeacher()
    for seed in seeds:
        teacher.reset(seed)
        world = teacher._env._world
        names = {i: n for n, i in world._mat_ids.items()}
        mat_map = world._mat_map
        spots = []
        for x in range(VIEW_W, world.area[0] - VIEW_W):
            for y in range(VIEW_H, world.area[1] - VIEW_H):
                if names[int(mat_map[x, y])] in WALKABLE and world[x, y][1] is None:
                    if matches(scene, view_shares(mat_map, names, x, y)):
                        spots.append((x, y))
        if spots:
            return seed, spots[int(rng.integers(len(spots)))]
    return None


def record_scene(seed: int, tile: tuple[int, int], prompt_frames: int) -> list[np.ndarray]:
    """Frames of the world `seed` with the player moved to `tile` at mid-morning."""
    teacher = CrafterTeacher()
    teacher.reset(seed)
    env = teacher._env
    env._world.move(env._player, np.array(tile))
    teacher.set_time(60)  # full daylight
    return [teacher.step(0)[0] for _ in range(prompt_frames)]


def write_worlds(out: Path, prompt_frames: int = 4, seeds: int = 40, seed: int = 0) -> list[dict]:
    """Find, record and write every scene; returns the index entries."""
    rng = np.random.default_rng(seed)
    index = []
    for scene in SCENES:
        found = find_scene(scene, range(seed, seed + seeds), rng)
        if found is None:
            logger.warning("no %s scene in %d worlds", scene.slug, seeds)
            continue
        world_seed, tile = found
        frames = record_scene(world_seed, tile, prompt_frames)
        folder = out / scene.slug
        folder.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / f"prompt_{i}.png")
        Image.fromarray(frames[-1]).resize((256, 256), Image.NEAREST).save(folder / "thumbnail.png")
        index.append(
            {
                "slug": scene.slug,
                "title": scene.title,
                "description": scene.description,
                "teacher": "crafter",
                "seed": world_seed,
                "tile": list(map(int, tile)),
                "prompt_frames": [f"{scene.slug}/prompt_{i}.png" for i in range(len(frames))],
                "thumbnail": f"{scene.slug}/thumbnail.png",
            }
        )
        logger.info("%s: world %d at %s", scene.slug, world_seed, tile)
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return index


def main(argv: list[str] | None = None) -> None:
    """CLI: write the starting scenes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="models/worlds")
    parser.add_argument("--prompt-frames", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for entry in write_worlds(Path(args.out), args.prompt_frames, args.seeds, args.seed):
        print(f"{entry['slug']:<10} {entry['title']}: world {entry['seed']} tile {entry['tile']}")


if __name__ == "__main__":
    main()
