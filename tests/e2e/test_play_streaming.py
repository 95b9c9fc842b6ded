"""Playing in headless Chromium: WebRTC video from the worker, keys steering the picture."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.conftest import make_world
from tests.e2e.conftest import off_loop
from tests.e2e.players import (
    best_shift,
    capture,
    decoded_fps,
    difference,
    log_in,
    queue_and_play,
    sign_up,
    start_playing,
    wait_for_video,
)
from webapp.fleet.models import GpuPool, Slot, Worker
from webapp.fleet.services import reap_workers
from webapp.play.models import PlaySession
from webapp.worlds.placeholders import placeholder_image

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def set_pool(pool, **fields):
    GpuPool.objects.filter(pk=pool.pk).update(**fields)


def hold(page, key: str, seconds: float) -> None:
    page.keyboard.down(key)
    page.wait_for_timeout(seconds * 1000)
    page.keyboard.up(key)
    page.wait_for_timeout(600)  # the release reaches the worker and its frame the screen


def test_a_new_player_streams_at_frame_rate_steers_the_picture_and_plays_until_time_is_up(
    service, pool, browser_context
):
    off_loop(set_pool, pool, session_seconds=32)
    off_loop(make_world, pool)
    off_loop(service.start_worker, slots=1)
    page = browser_context.new_page()
    sign_up(page, service.url, "streamer")
    session_id = queue_and_play(page, "Coast")
    expect(page.locator("#controls")).to_contain_text("D / → right")

    # Frames flow; how many a second is bench/players.py's to measure (and hold to a floor).
    fps = decoded_fps(page, 3)
    assert fps > 1, f"decoded {fps:.1f} fps"

    start_playing(page)
    still = capture(page)
    hold(page, "d", 0.4)
    dy, dx, error = best_shift(still, moved := capture(page))
    # Walking right scrolls the world left, one pixel per frame.
    assert dy == 0 and dx <= -3 and error < 12, (dy, dx, error)
    assert difference(still, moved) > 3 * error
    hold(page, "w", 0.4)
    dy, dx, error = best_shift(moved, capture(page))
    assert dy >= 3 and dx == 0 and error < 12, (dy, dx, error)
    page.keyboard.down("Space")  # "attack" shows the picture inverted while held
    page.wait_for_timeout(600)
    inverted = capture(page)
    page.keyboard.up("Space")
    page.wait_for_timeout(600)
    assert difference(255 - inverted, capture(page)) < 12

    page.reload()  # within the grace period: the same session, a new peer connection
    wait_for_video(page)
    assert page.url.rstrip("/").endswith(session_id)
    # The new page counts its input from seq 1 again: the worker must still act on it.
    start_playing(page)
    before = capture(page)
    hold(page, "d", 0.4)
    dy, dx, error = best_shift(before, capture(page))
    assert dy == 0 and dx <= -3 and error < 12, (dy, dx, error)
    expect(page.locator("#end-label")).to_have_text("time is up", timeout=30_000)
    session = off_loop(PlaySession.objects.get, public_id=session_id)
    assert session.end_reason == PlaySession.EndReason.TIME_UP
    assert off_loop(lambda: Slot.objects.filter(session__isnull=False).count()) == 0
    assert off_loop(Slot.objects.count) == 1
    expect(page.locator("#queue-again")).to_be_visible()


def test_taps_shorter_than_a_frame_each_move_one_step_and_the_overlay_reports_them(
    service, pool, browser_context
):
    off_loop(make_world, pool)
    off_loop(service.start_worker, slots=1)
    page = browser_context.new_page()
    sign_up(page, service.url, "tapper")
    queue_and_play(page, "Coast")
    start_playing(page)
    page.wait_for_timeout(500)
    before = capture(page)
    for _ in range(3):
        # Down and up with nothing between: both messages reach the worker within one frame
        # (50 ms), so the folder alone decides whether the press is seen.
        page.keyboard.down("d")
        page.keyboard.up("d")
        page.wait_for_timeout(300)
    page.wait_for_timeout(300)
    dy, dx, error = best_shift(before, capture(page))
    # The placeholder walks one pixel per frame of D: each tap is exactly one frame of it.
    assert (dy, dx) == (0, -3) and error < 12, (dy, dx, error)

    page.keyboard.press("F3")
    overlay = page.locator("#stats")
    expect(overlay).to_be_visible()
    # Presented frames and picture-timed presses, sampled once a second.
    expect(overlay).to_contain_text(re.compile(r"presented +(1\d|2\d)\.\d fps"), timeout=5000)
    expect(overlay).to_contain_text(re.compile(r"key→photon \(picture\) p50 \d+ ms"))
    stats = page.evaluate("() => window.reverie.stats.snapshot()")
    assert stats["probeSamples"] >= 2 and stats["samples"] >= 2, stats
    assert stats["presentedFrames"] > 20 and stats["intervalP95"] is not None, stats


def test_two_players_in_two_browsers_share_one_worker_and_each_sees_only_their_world(
    service, pool, make_user, browsers
):
    off_loop(make_world, pool)
    off_loop(make_world, pool, slug="forest", name="Forest")
    worker = off_loop(service.start_worker, slots=2)
    pages = {}
    for world in ("Coast", "Forest"):
        user = off_loop(make_user)
        page = browsers().new_page()
        log_in(page, service.url, user.username)
        queue_and_play(page, world)
        pages[world.lower()] = page
    assert off_loop(lambda: Slot.objects.filter(session__isnull=False).count()) == 2
    assert off_loop(Worker.objects.count) == 1
    for slug, page in pages.items():
        assert decoded_fps(page, 2) > 1  # frames flow to each player
        shown = capture(page)
        own = placeholder_image(slug)
        other = placeholder_image("forest" if slug == "coast" else "coast")
        assert difference(shown, own) < 12 < difference(shown, other), slug
    # SIGTERM drains: the players play on for WORKER_DRAIN_SECONDS (3 here), then their
    # sessions end cleanly, they are told why, and the worker exits.
    worker.terminate()
    drain_began = time.monotonic()
    time.sleep(0.5)
    for page in pages.values():
        assert page.locator("#end-label").text_content() == ""  # still playing
        assert decoded_fps(page, 0.6) > 1
    for page in pages.values():
        expect(page.locator("#end-label")).to_have_text("the worker shut down", timeout=15_000)
    assert time.monotonic() - drain_began >= 3
    assert worker.wait(timeout=20) == 0


def test_a_killed_worker_is_reported_lost_within_15_seconds_with_the_front_of_the_queue(
    service, pool, settings, browser_context
):
    settings.WORKER_TIMEOUT = 2
    off_loop(make_world, pool)
    worker = off_loop(service.start_worker, slots=1)
    page = browser_context.new_page()
    sign_up(page, service.url, "unlucky")
    queue_and_play(page, "Coast")
    worker.kill()  # SIGKILL: no goodbye, the heartbeat just stops
    killed_at = time.monotonic()
    while time.monotonic() - killed_at < 12 and not off_loop(reap_workers):
        time.sleep(0.5)
    left_ms = max(1.0, 15 - (time.monotonic() - killed_at)) * 1000
    expect(page.locator("#end-label")).to_have_text("the worker was lost", timeout=left_ms)
    assert time.monotonic() - killed_at < 15
    expect(page.locator("#rejoin-front")).to_be_visible()
    assert off_loop(Slot.objects.count) == 0
