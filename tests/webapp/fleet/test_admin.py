"""Operator actions in Django admin: drain and enable pools and workers, end a session."""

import pytest
from django.urls import reverse

from tests.conftest import confirmed_session, make_worker
from webapp.fleet.models import GpuPool, Worker
from webapp.play.models import PlaySession
from webapp.queue import services
from webapp.queue.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator(make_user):
    user = make_user("operator")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def act(client, model, action, pks):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return client.post(url, {"action": action, "_selected_action": pks})


def test_the_pool_list_shows_capacity_and_utilisation(client, operator, world, owner):
    confirmed_session(world, owner, worker=make_worker(world.pool, slots=2))
    client.force_login(operator)
    page = client.get(reverse("admin:fleet_gpupool_changelist"))
    assert b"1/2 (50%)" in page.content


def test_draining_a_pool_stops_new_offers_and_enabling_resumes(client, operator, world, owner):
    client.force_login(operator)
    act(client, GpuPool, "drain", [world.pool.pk])
    make_worker(world.pool, slots=1)
    with pytest.raises(services.QueueError):
        services.join(owner, world)
    act(client, GpuPool, "enable", [world.pool.pk])
    ticket = services.join(owner, world)
    ticket.refresh_from_db()
    assert ticket.state == Ticket.State.OFFERED


def test_a_draining_worker_keeps_its_sessions_but_gets_no_new_players(
    client, operator, world, owner, make_user
):
    worker = make_worker(world.pool, slots=2)
    session = confirmed_session(world, owner, worker=worker)
    client.force_login(operator)
    act(client, Worker, "drain", [worker.pk])
    newcomer = services.join(make_user(), world)
    newcomer.refresh_from_db()
    assert newcomer.state == Ticket.State.WAITING
    session.refresh_from_db()
    assert session.is_live
    act(client, Worker, "enable", [worker.pk])
    newcomer.refresh_from_db()
    assert newcomer.state == Ticket.State.OFFERED


def test_ending_a_session_records_the_operator(client, operator, world, owner):
    session = confirmed_session(world, owner)
    client.force_login(operator)
    act(client, PlaySession, "end_sessions", [session.pk])
    session.refresh_from_db()
    assert session.end_reason == PlaySession.EndReason.ADMIN_ENDED
    page = client.get(reverse("admin:play_playsession_changelist") + "?live=yes")
    assert str(session.public_id).encode() not in page.content


def test_players_cannot_use_operator_actions(client, owner, world):
    client.force_login(owner)
    response = act(client, GpuPool, "drain", [world.pool.pk])
    assert response.status_code == 302 and "/admin/login/" in response.url
    world.pool.refresh_from_db()
    assert not world.pool.draining


def test_view_only_staff_cannot_run_operator_actions(client, world, make_user):
    from django.contrib.auth.models import Permission

    viewer = make_user("viewer")
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_gpupool"))
    client.force_login(viewer)
    act(client, GpuPool, "drain", [world.pool.pk])
    world.pool.refresh_from_db()
    assert not world.pool.draining


def test_a_pool_cannot_let_the_priority_tier_take_every_offer(pool):
    from django.core.exceptions import ValidationError

    pool.priority_share = 1.0
    with pytest.raises(ValidationError):
        pool.full_clean()
