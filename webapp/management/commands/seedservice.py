"""Seed the default pool, the starting worlds and an operator account (idempotent)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from webapp.accounts.models import User
from webapp.fleet.models import GpuPool, stored_checkpoint
from webapp.worlds.scenes import SceneError, install, placeholder_scenes, recorded_scenes


class Command(BaseCommand):
    help = "Create the default pool, the starting worlds and an admin account."

    def add_arguments(self, parser):
        parser.add_argument("--admin-username", default="admin")

    @transaction.atomic
    def handle(self, *args, **options):
        checkpoint = stored_checkpoint(settings.DEFAULT_CHECKPOINT)
        pool, created = GpuPool.objects.get_or_create(
            slug=settings.WORKER_POOL,
            defaults={"name": "Default (CPU)", "checkpoint": checkpoint},
        )
        if created:
            self.stdout.write(f"created pool {pool.slug}")
        elif checkpoint and pool.checkpoint in ("", settings.DEFAULT_CHECKPOINT):
            # A checkout that gained the trained model moves its pool onto it; one seeded
            # before pools stored paths relative to MODELS_DIR gets the relative path.
            GpuPool.objects.filter(pk=pool.pk).update(checkpoint=checkpoint)
            self.stdout.write(f"pool {pool.slug} now runs {checkpoint}")
        for line in install(self._scenes(), pool):
            self.stdout.write(line)
        self._ensure_admin(options["admin_username"])

    def _scenes(self):
        if (settings.WORLD_SCENES_DIR / "index.json").exists():
            try:
                return recorded_scenes(settings.WORLD_SCENES_DIR)
            except SceneError as exc:
                raise CommandError(str(exc)) from exc
        return placeholder_scenes()

    def _ensure_admin(self, username):
        password_file = settings.DATA_DIR / "admin-password.txt"
        user = User.objects.filter(username__iexact=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, password=password, email="")
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        elif password_file.exists():
            password = password_file.read_text().strip()
        else:
            password = "(unchanged; set it with manage.py changepassword)"
        self.stdout.write(f"admin account: {username} / {password}")
