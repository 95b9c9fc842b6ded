"""The shipped model in the browser: a recorded scene streams as generated video, keys move it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.conf import settings
from PIL import Image
from playwright.sync_api import expect

from inference import SHIPPED_CHECKPOINT
from tests.e2e.conftest import off_loop
from tests.e2e.players import capture, difference, queue_and_play, sign_up, start_playing
from webapp.fleet.models import GpuPool
from webapp.worlds.scenes import install, recorded_scenes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def scene_picture(slug: str) -> np.ndarray:
    """The last prompt frame of a recorded scene, float (64,64,3)."""
    [scene] = [s for s in recorded_scenes(settings.WORLD_SCENES_DIR) if s.slug == slug]
    return np.asarray(Image.open(io.BytesIO(scene.prompts[-1])).convert("RGB"), np.float32)


def serve_the_shipped_model(pool):
    GpuPool.objects.filter(pk=pool.pk).update(checkpoint=str(SHIPPED_CHECKPOINT))
    install(recorded_scenes(settings.WORLD_SCENES_DIR), pool)


def test_the_shipped_model_continues_the_recorded_coast_and_walking_changes_it(
    service, pool, browser_context
):
    off_loop(serve_the_shipped_model, pool)
    off_loop(service.start_worker, slots=1)
    page = browser_context.new_page()
    sign_up(page, service.url, "walker")
    queue_and_play(page, "Coast")
    expect(page.locator("#controls")).to_contain_text("move_right")
    start_playing(page)
    page.wait_for_timeout(1000)
    still = capture(page)
    distance = {
        slug: difference(still, scene_picture(slug))
        for slug in ("coast", "forest", "meadow", "mountain", "dunes")
    }
    # Generated from the coast's prompt frames, the picture is the coast, not another scene.
    assert distance["coast"] < 12 and all(
        distance["coast"] * 3 < d for slug, d in distance.items() if slug != "coast"
    ), distance
    page.wait_for_timeout(1000)
    idle = difference(still, capture(page))  # nothing held: the world only animates
    page.keyboard.down("d")
    page.wait_for_timeout(1500)
    page.keyboard.up("d")
    page.wait_for_timeout(600)
    walked = difference(still, capture(page))
    assert walked > max(3 * idle, 10), (idle, walked)
