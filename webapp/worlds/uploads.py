"""A player's own picture as a starting world: validated, resized, stored as a private world."""

from __future__ import annotations

import io
import logging
import uuid
import warnings

from django import forms
from django.conf import settings
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from PIL import Image, UnidentifiedImageError

from webapp.fleet.models import GpuPool
from webapp.worlds.models import PromptImage, World

logger = logging.getLogger(__name__)

# Stored prompts are capped here; the runtime resizes to its model's own frame size at start.
MAX_SIDE = 640
THUMBNAIL_SIDE = 128
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
MAX_PIXELS = 40_000_000


class UploadWorldForm(forms.Form):
    """Name and picture of a private world; anything that is not an image is refused."""

    name = forms.CharField(max_length=80, initial="My world")
    image = forms.FileField(help_text="A PNG, JPEG or WebP picture; it will be resized.")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_image(self) -> Image.Image:
        upload = self.cleaned_data["image"]
        if upload.size > settings.WORLD_UPLOAD_MAX_BYTES:
            limit = filesizeformat(settings.WORLD_UPLOAD_MAX_BYTES)
            raise forms.ValidationError(f"The picture is larger than {limit}.")
        try:
            with warnings.catch_warnings():
                # Pillow only warns about huge canvases; the size check below decides.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                picture = Image.open(upload, formats=ALLOWED_FORMATS)
            width, height = picture.size
            if width * height > MAX_PIXELS:
                # Checked before decoding: a tiny file can declare a gigantic canvas.
                raise forms.ValidationError(
                    f"The picture is {width}x{height} pixels; the limit is "
                    f"{MAX_PIXELS // 1_000_000} megapixels."
                )
            picture.load()  # decodes the whole file: a truncated or fake image fails here
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise forms.ValidationError(
                "That file is not a picture we can read; upload a PNG, JPEG or WebP image."
            ) from exc
        return picture.convert("RGB")

    def clean(self):
        cleaned = super().clean()
        owned = World.objects.filter(owner=self.user).count()
        if owned >= settings.WORLD_UPLOADS_PER_USER:
            raise forms.ValidationError(
                f"You already have {owned} worlds of your own; remove one before adding another."
            )
        return cleaned


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _fit(picture: Image.Image, side: int) -> Image.Image:
    copy = picture.copy()
    copy.thumbnail((side, side), Image.Resampling.LANCZOS)
    return copy


def create_uploaded_world(user, name: str, picture: Image.Image) -> World:
    """Store the picture as the prompt of a new private world on the default pool."""
    pool = GpuPool.objects.filter(slug=settings.WORKER_POOL).first() or GpuPool.objects.first()
    if pool is None:
        raise forms.ValidationError("No pool is set up to play uploaded worlds yet.")
    with transaction.atomic():
        world = World.objects.create(
            name=name,
            slug=f"u-{uuid.uuid4().hex[:12]}",
            pool=pool,
            owner=user,
            listed=False,
            description="Your own picture.",
            thumbnail_png=_png(_fit(picture, THUMBNAIL_SIDE)),
        )
        PromptImage.objects.create(world=world, index=0, png=_png(_fit(picture, MAX_SIDE)))
    logger.info("user %s uploaded world %s (%dx%d)", user.public_id, world.public_id, *picture.size)
    return world
