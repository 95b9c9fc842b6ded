"""Players see and act on their own tickets and sessions only; pages work without JavaScript."""

import pytest
from django.urls import reverse

from tests.conftest import confirmed_session, make_worker
from webapp.queue import services
from webapp.queue.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_lobby_lists_worlds_with_thumbnails(client, world):
    page = client.get(reverse("worlds-lobby"))
    assert b"Coast" in page.content
    thumb = client.get(reverse("worlds-thumbnail", args=[world.public_id]))
    assert thumb["Content-Type"] == "image/png"
    assert bytes(thumb.content[:8]) == b"\x89PNG\r\n\x1a\n"


def test_joining_without_javascript_works_with_plain_forms(client, owner, world):
    client.force_login(owner)
    response = client.post(reverse("queue-join", args=[world.slug]))
    ticket = Ticket.objects.get(user=owner)
    assert response.url == reverse("queue-ticket", args=[ticket.public_id])
    page = client.get(response.url)
    assert b'http-equiv="refresh"' in page.content
    assert b"Position" in page.content
    client.post(reverse("queue-leave", args=[ticket.public_id]))
    ticket.refresh_from_db()
    assert ticket.state == Ticket.State.LEFT


def test_an_outsider_gets_404_for_someone_elses_ticket(client, owner, outsider, world):
    ticket = services.join(owner, world)
    client.force_login(outsider)
    assert client.get(reverse("queue-ticket", args=[ticket.public_id])).status_code == 404
    assert client.post(reverse("queue-leave", args=[ticket.public_id])).status_code == 404
    assert client.post(reverse("queue-confirm", args=[ticket.public_id])).status_code == 404
    ticket.refresh_from_db()
    assert ticket.state == Ticket.State.WAITING


def test_an_outsider_cannot_see_or_end_someone_elses_session(client, owner, outsider, world):
    session = confirmed_session(world, owner)
    client.force_login(outsider)
    assert client.get(reverse("play-session", args=[session.public_id])).status_code == 404
    assert client.post(reverse("play-leave", args=[session.public_id])).status_code == 404
    session.refresh_from_db()
    assert session.is_live


def test_confirm_without_javascript_leads_to_the_play_page(client, owner, world):
    make_worker(world.pool, slots=1)
    client.force_login(owner)
    client.post(reverse("queue-join", args=[world.slug]))
    ticket = Ticket.objects.get(user=owner)
    response = client.post(reverse("queue-confirm", args=[ticket.public_id]))
    assert response.url.startswith("/play/")
    assert b"Leave" in client.get(response.url).content


def test_csrf_stays_on(owner, world):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert strict.post(reverse("queue-join", args=[world.slug])).status_code == 403
    assert not Ticket.objects.filter(user=owner).exists()


def test_joining_twice_for_another_world_shows_a_clear_error(client, owner, world):
    from tests.conftest import make_world

    other = make_world(world.pool, slug="forest", name="Forest")
    client.force_login(owner)
    client.post(reverse("queue-join", args=[world.slug]))
    response = client.post(reverse("queue-join", args=[other.slug]), follow=True)
    assert b"already queued" in response.content
