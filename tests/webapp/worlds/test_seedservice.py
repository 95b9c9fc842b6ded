"""Seeding the default pool, the starting worlds and the operator account."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from webapp.accounts.models import User
from webapp.fleet.models import GpuPool
from webapp.worlds.models import World
from webapp.worlds.placeholders import placeholder_image, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_data_dir(settings, tmp_path):
    # The command keeps the admin password in DATA_DIR; never the developer's own file.
    settings.DATA_DIR = tmp_path


def seed():
    out = StringIO()
    call_command("seedservice", stdout=out)
    return out.getvalue()


def write_scenes(folder, slugs):
    entries = []
    for slug in slugs:
        (folder / slug).mkdir(parents=True)
        png = png_bytes(placeholder_image(slug))
        (folder / slug / "prompt_0.png").write_bytes(png)
        (folder / slug / "thumbnail.png").write_bytes(png)
        entries.append(
            {
                "slug": slug,
                "title": slug.title(),
                "description": "d",
                "prompt_frames": [f"{slug}/prompt_0.png"],
                "thumbnail": f"{slug}/thumbnail.png",
            }
        )
    (folder / "index.json").write_text(json.dumps(entries))


def test_without_recorded_scenes_it_seeds_the_four_placeholder_worlds(settings, tmp_path):
    settings.WORLD_SCENES_DIR = tmp_path / "none"
    output = seed()
    assert sorted(World.objects.filter(listed=True).values_list("slug", flat=True)) == [
        "coast",
        "desert",
        "forest",
        "village",
    ]
    assert GpuPool.objects.filter(slug=settings.WORKER_POOL).exists()
    assert User.objects.get(username="admin").is_superuser
    assert "admin account: admin / " in output


def test_recorded_scenes_replace_the_placeholders(settings, tmp_path):
    settings.WORLD_SCENES_DIR = tmp_path / "none"
    seed()
    write_scenes(tmp_path / "scenes", ["coast", "meadow"])
    settings.WORLD_SCENES_DIR = tmp_path / "scenes"
    output = seed()
    assert "refreshed world coast" in output and "unlisted world village" in output
    assert sorted(World.objects.filter(listed=True).values_list("slug", flat=True)) == [
        "coast",
        "meadow",
    ]
    assert World.objects.get(slug="coast").prompts.count() == 1


def test_seeding_twice_changes_nothing_and_keeps_the_password(settings, tmp_path):
    settings.WORLD_SCENES_DIR = tmp_path / "none"
    first = seed().splitlines()[-1]
    second = seed().splitlines()[-1]
    assert first == second
    assert World.objects.count() == 4


def test_a_broken_scene_index_is_a_clear_error(settings, tmp_path):
    (tmp_path / "index.json").write_text('[{"slug": "x"}]')
    settings.WORLD_SCENES_DIR = tmp_path
    with pytest.raises(CommandError, match="cannot read scenes"):
        seed()


def test_the_pool_stores_its_model_relative_to_models_dir_and_workers_resolve_it_there(
    settings, tmp_path
):
    settings.MODELS_DIR = tmp_path / "models"
    settings.DEFAULT_CHECKPOINT = str(tmp_path / "models" / "crafter-small.safetensors")
    settings.WORLD_SCENES_DIR = tmp_path / "no-scenes"
    seed()
    pool = GpuPool.objects.get(slug=settings.WORKER_POOL)
    assert pool.checkpoint == "crafter-small.safetensors"
    settings.MODELS_DIR = tmp_path / "elsewhere"  # another host, its own models directory
    assert pool.checkpoint_path() == str(tmp_path / "elsewhere" / "crafter-small.safetensors")


def test_a_pool_seeded_with_an_absolute_path_moves_to_the_relative_one(settings, tmp_path):
    settings.MODELS_DIR = tmp_path
    settings.DEFAULT_CHECKPOINT = str(tmp_path / "model.safetensors")
    settings.WORLD_SCENES_DIR = tmp_path / "no-scenes"
    GpuPool.objects.create(
        name="Default", slug=settings.WORKER_POOL, checkpoint=str(tmp_path / "model.safetensors")
    )
    seed()
    assert GpuPool.objects.get(slug=settings.WORKER_POOL).checkpoint == "model.safetensors"
