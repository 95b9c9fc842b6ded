"""Seed the default pool, the starting worlds and an operator account (idempotent)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from webapp.accounts.models import User
from webapp.fleet.models import GpuPool
from webapp.worlds.models import PromptImage, World
from webapp.worlds.placeholders import placeholder_image, png_bytes

WORLDS = [
    ("coast", "Coast", "Sand meets the sea; walk the shoreline."),
    ("village", "Village", "Open fields around a few huts."),
    ("forest", "Forest", "Dense trees and narrow clearings."),
    ("desert", "Desert", "Dunes as far as you can see."),
]


class Command(BaseCommand):
    help = "Create the default pool, the four starting worlds and an admin account."

    def add_arguments(self, parser):
        parser.add_argument("--admin-username", default="admin")

    @transaction.atomic
    def handle(self, *args, **options):
        pool, created = GpuPool.objects.get_or_create(
            slug=settings.WORKER_POOL,
            defaults={"name": "Default (CPU)", "checkpoint": settings.DEFAULT_CHECKPOINT},
        )
        if created:
            self.stdout.write(f"created pool {pool.slug}")
        for order, (slug, name, description) in enumerate(WORLDS):
            self._seed_world(pool, order, slug, name, description)
        self._ensure_admin(options["admin_username"])

    def _seed_world(self, pool, order, slug, name, description):
        if World.objects.filter(slug=slug).exists():
            return
        image = placeholder_image(slug)
        world = World.objects.create(
            slug=slug, name=name, description=description, pool=pool, sort_order=order,
            thumbnail_png=png_bytes(image, scale=2),
        )
        PromptImage.objects.create(world=world, index=0, png=png_bytes(image))
        self.stdout.write(f"seeded world {slug}")

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
