from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from webapp.worlds.models import PromptImage, World


class PromptInline(admin.TabularInline):
    model = PromptImage
    fields = ("index",)
    extra = 0


@admin.register(World)
class WorldAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "pool", "listed", "preview")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [PromptInline]

    @admin.display(description="thumbnail")
    def preview(self, world):
        url = reverse("worlds-thumbnail", args=[world.public_id])
        return format_html('<img src="{}" width="48" height="48" alt="">', url)
