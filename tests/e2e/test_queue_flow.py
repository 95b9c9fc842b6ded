"""A new player in headless Chromium: sign up, pick a world, wait in line, confirm, play."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import make_world
from tests.e2e.conftest import off_loop
from tests.e2e.players import wait_for_video
from webapp.queue import services
from webapp.queue.models import Ticket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_player_signs_up_queues_moves_up_confirms_and_plays(
    service, pool, make_user, browser_context
):
    world = off_loop(make_world, pool)
    off_loop(make_world, pool, slug="forest", name="Forest")
    off_loop(service.start_worker, slots=1)
    # Two players were here first: one holds the only slot's offer, one waits.
    first = off_loop(services.join, off_loop(make_user), world)
    second = off_loop(services.join, off_loop(make_user), world)
    off_loop(first.refresh_from_db)
    assert first.state == Ticket.State.OFFERED

    page = browser_context.new_page()
    page.goto(service.url + "/accounts/signup/")
    page.fill("#id_username", "newplayer")
    page.fill("#id_password1", "a long enough passphrase")
    page.fill("#id_password2", "a long enough passphrase")
    page.click("#signup-form button[type=submit]")
    expect(page.locator(".world h2")).to_have_text(["Coast", "Forest"])
    assert page.locator(".world img.thumb").first.evaluate("img => img.naturalWidth") > 0

    page.click("text=Play Coast")
    expect(page.locator("#position")).to_have_text("2")
    expect(page.locator("#waiting")).to_have_text("2")
    expect(page.locator("#estimate")).not_to_have_text("no capacity online")

    off_loop(services.leave, second)
    expect(page.locator("#position")).to_have_text("1")
    off_loop(services.leave, first)  # gives back the slot: the next in line is asked to confirm
    expect(page.locator("#confirm")).to_be_visible()
    expect(page.locator("#offer-left")).not_to_have_text("0")

    page.click("#confirm")
    expect(page).to_have_url(re.compile(r"/play/[0-9a-f-]+/$"))
    wait_for_video(page)
    expect(page.locator("#time-left")).not_to_have_text("-")
    # The picture keeps coming: the worker streams video, not a single frame.
    page.wait_for_function("() => window.reverie.stats.framesDecoded > 20", timeout=15_000)
    page.click("#leave")
    expect(page.locator("#end-label")).to_have_text("you left")
