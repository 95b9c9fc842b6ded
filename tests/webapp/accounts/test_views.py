import pytest
from django.test import override_settings
from django.urls import reverse

from webapp.accounts.models import User

PASSWORD = "correct horse battery staple"


def signup(client, username, password=PASSWORD):
    return client.post(
        reverse("accounts-signup"),
        {"username": username, "password1": password, "password2": password},
    )


@pytest.mark.django_db
def test_it_signs_up_and_logs_the_player_in(client):
    response = signup(client, "Alice")
    assert response.status_code == 302
    assert User.objects.filter(username="Alice").exists()
    lobby = client.get(reverse("worlds-lobby"))
    assert b"Alice" in lobby.content


@pytest.mark.django_db
def test_it_refuses_a_username_that_differs_only_in_case(client, make_user):
    make_user("alice")
    response = signup(client, "ALICE")
    assert response.status_code == 200
    assert b"already exists" in response.content
    assert User.objects.filter(username__iexact="alice").count() == 1


@pytest.mark.django_db
def test_the_database_refuses_case_variants_too(make_user):
    from django.db import IntegrityError, transaction

    make_user("bob")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(username="BOB", password=PASSWORD)


@pytest.mark.django_db
def test_it_runs_passwords_through_the_validators(client):
    response = signup(client, "carol", password="12345678")
    assert response.status_code == 200
    assert b"too common" in response.content or b"entirely numeric" in response.content
    assert not User.objects.filter(username="carol").exists()


@pytest.mark.django_db
def test_login_accepts_any_case_of_the_username(client, make_user):
    make_user("dave")
    response = client.post(reverse("accounts-login"), {"username": "DAVE", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("worlds-lobby")).context["user"].username == "dave"


@pytest.mark.django_db
def test_logout_is_a_post_and_ends_the_login(client, owner):
    client.force_login(owner)
    assert client.post(reverse("accounts-logout")).status_code == 302
    assert not client.get(reverse("worlds-lobby")).context["user"].is_authenticated


@pytest.mark.django_db
def test_it_changes_the_password(client, owner):
    client.force_login(owner)
    new = "another quite long passphrase"
    response = client.post(
        reverse("accounts-password"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(new)


@pytest.mark.django_db
# Per day: a per-minute window can turn over between the requests.
@override_settings(LOGIN_RATE="3/d")
def test_login_is_rate_limited_per_ip(client, owner):
    for _ in range(3):
        client.post(reverse("accounts-login"), {"username": "owner", "password": "wrong"})
    response = client.post(reverse("accounts-login"), {"username": "owner", "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert "_auth_user_id" not in client.session
    other_ip = client.post(
        reverse("accounts-login"),
        {"username": "owner", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.9",
    )
    assert other_ip.status_code == 302


@pytest.mark.django_db
# Per day: a per-minute window can turn over between the requests and let the third in.
@override_settings(SIGNUP_RATE="2/d")
def test_signup_is_rate_limited_per_ip(client):
    signup(client, "one")
    client.logout()
    signup(client, "two")
    client.logout()
    response = signup(client, "three")
    assert response.status_code == 429
    assert not User.objects.filter(username="three").exists()


@pytest.mark.django_db
def test_admin_is_for_staff_only(client, owner, make_user):
    client.force_login(owner)
    assert client.get("/admin/").status_code == 302
    staff = make_user("operator")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
