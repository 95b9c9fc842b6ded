"""Live sessions for operators: who plays what, time left, and ending a session."""

from __future__ import annotations

from django.contrib import admin, messages

from webapp.play import services
from webapp.play.models import PlaySession


class LiveFilter(admin.SimpleListFilter):
    title = "live"
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return [("yes", "live"), ("no", "ended")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(state__in=PlaySession.LIVE_STATES)
        if self.value() == "no":
            return queryset.filter(state=PlaySession.State.ENDED)
        return queryset


@admin.register(PlaySession)
class PlaySessionAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "user",
        "world",
        "pool",
        "worker",
        "state",
        "time_left",
        "end_reason",
        "created_at",
    )
    list_filter = (LiveFilter, "pool", "end_reason")
    search_fields = ("user__username", "public_id")
    readonly_fields = [f.name for f in PlaySession._meta.fields]
    actions = ["end_sessions"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="time left")
    def time_left(self, session):
        left = session.seconds_left()
        if left is None or not session.is_live:
            return "-"
        return f"{int(left) // 60}:{int(left) % 60:02d}"

    @admin.action(
        description="End the session (the player sees 'ended by operator')", permissions=["change"]
    )
    def end_sessions(self, request, queryset):
        ended = sum(services.end_session(s, PlaySession.EndReason.ADMIN_ENDED) for s in queryset)
        messages.info(request, f"Ended {ended} session(s).")
