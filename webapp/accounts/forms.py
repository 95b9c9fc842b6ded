from __future__ import annotations

from django.contrib.auth.forms import UserCreationForm

from webapp.accounts.models import User


class SignupForm(UserCreationForm):
    """Sign-up; Django's form already refuses usernames that differ only in case."""

    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined]  # not in django-stubs
        model = User
        fields = ("username",)
