from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django_ratelimit.decorators import ratelimit

from webapp.accounts.forms import SignupForm

logger = logging.getLogger(__name__)

TOO_MANY = "Too many attempts from your address; wait a minute and try again."


def _login_rate(group, request):
    return settings.LOGIN_RATE


def _signup_rate(group, request):
    return settings.SIGNUP_RATE


@ratelimit(key="ip", rate=_signup_rate, method="POST", block=False)
def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        if getattr(request, "limited", False):
            form = SignupForm(initial={"username": request.POST.get("username", "")})
            return render(
                request, "accounts/signup.html", {"form": form, "limited": TOO_MANY}, status=429
            )
        if form.is_valid():
            user = form.save()
            login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
            messages.success(request, f"Welcome, {user.username}. Pick a world to play.")
            return redirect("worlds-lobby")
    return render(request, "accounts/signup.html", {"form": form})


@method_decorator(ratelimit(key="ip", rate=_login_rate, method="POST", block=False), name="post")
class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if getattr(request, "limited", False):
            # An unbound form: validating it would try the password, which is what we refuse.
            username = request.POST.get("username", "")
            form = self.get_form_class()(request, initial={"username": username})
            context = self.get_context_data(form=form, limited=TOO_MANY)
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"

    def form_valid(self, form):
        messages.success(self.request, "Your password was changed.")
        return super().form_valid(form)

    def get_success_url(self):
        return reverse("worlds-lobby")
