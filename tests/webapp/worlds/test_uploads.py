"""A player's own picture as a starting world: resized, private, and non-images refused."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from PIL import Image

from webapp.queue.models import Ticket
from webapp.worlds.models import World

pytestmark = pytest.mark.django_db


def picture(width, height, fmt="PNG"):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format=fmt)
    return SimpleUploadedFile(f"p.{fmt.lower()}", buffer.getvalue())


def upload(client, file, name="Beach"):
    return client.post(reverse("worlds-upload"), {"name": name, "image": file})


@pytest.fixture
def default_pool(pool, settings):
    settings.WORKER_POOL = pool.slug
    return pool


def test_an_uploaded_picture_becomes_a_private_world(client, owner, outsider, default_pool):
    client.force_login(owner)
    response = upload(client, picture(64, 64))
    assert response.status_code == 302
    world = World.objects.get(owner=owner)
    assert not world.listed and world.pool == default_pool
    assert b"Beach" in client.get(reverse("worlds-lobby")).content
    client.force_login(outsider)
    assert b"Beach" not in client.get(reverse("worlds-lobby")).content
    assert client.get(reverse("worlds-thumbnail", args=[world.public_id])).status_code == 404
    assert client.post(reverse("queue-join", args=[world.slug])).status_code == 404


def test_the_owner_can_queue_for_their_uploaded_world(client, owner, default_pool):
    client.force_login(owner)
    upload(client, picture(64, 64))
    world = World.objects.get(owner=owner)
    client.post(reverse("queue-join", args=[world.slug]))
    assert Ticket.objects.get(user=owner).world == world


def test_a_large_picture_is_resized(client, owner, default_pool):
    client.force_login(owner)
    upload(client, picture(1920, 1080, fmt="JPEG"))
    prompt = World.objects.get(owner=owner).prompts.get()
    stored = Image.open(io.BytesIO(bytes(prompt.png)))
    assert max(stored.size) == 640 and stored.size == (640, 360)


def test_a_file_that_is_not_a_picture_gets_a_clear_error(client, owner, default_pool):
    client.force_login(owner)
    response = upload(client, SimpleUploadedFile("x.png", b"definitely not a png"))
    assert response.status_code == 400
    assert b"not a picture we can read" in response.content
    assert not World.objects.filter(owner=owner).exists()


def test_a_truncated_picture_is_refused(client, owner, default_pool):
    client.force_login(owner)
    data = picture(64, 64).read()
    response = upload(client, SimpleUploadedFile("t.png", data[: len(data) // 2]))
    assert response.status_code == 400
    assert not World.objects.filter(owner=owner).exists()


@override_settings(WORLD_UPLOAD_MAX_BYTES=1000)
def test_an_oversized_file_is_refused(client, owner, default_pool):
    client.force_login(owner)
    response = upload(client, SimpleUploadedFile("big.png", b"x" * 2000))
    assert response.status_code == 400
    assert b"larger than" in response.content


@override_settings(WORLD_UPLOADS_PER_USER=1)
def test_players_have_a_limit_of_own_worlds(client, owner, default_pool):
    client.force_login(owner)
    upload(client, picture(64, 64))
    response = upload(client, picture(64, 64), name="Second")
    assert response.status_code == 400
    assert World.objects.filter(owner=owner).count() == 1


def test_uploading_needs_a_login(client, default_pool):
    response = upload(client, picture(64, 64))
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_a_tiny_file_declaring_a_gigantic_picture_is_refused(client, owner, default_pool):
    client.force_login(owner)
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")  # ~12 KB, 100 megapixels
    response = upload(client, SimpleUploadedFile("bomb.png", buffer.getvalue()))
    assert response.status_code == 400
    assert b"megapixels" in response.content


def test_other_formats_than_png_jpeg_webp_are_refused(client, owner, default_pool):
    client.force_login(owner)
    response = upload(client, picture(64, 64, fmt="BMP"))
    assert response.status_code == 400


def test_a_player_can_remove_their_own_world_but_not_others(client, owner, outsider, default_pool):
    client.force_login(owner)
    upload(client, picture(64, 64))
    world = World.objects.get(owner=owner)
    client.force_login(outsider)
    assert client.post(reverse("worlds-remove", args=[world.public_id])).status_code == 404
    client.force_login(owner)
    client.post(reverse("worlds-remove", args=[world.public_id]))
    assert not World.objects.filter(pk=world.pk).exists()
