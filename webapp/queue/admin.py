from django.contrib import admin

from webapp.queue.models import Ticket


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "user",
        "world",
        "pool",
        "tier",
        "front",
        "state",
        "created_at",
        "last_seen",
    )
    list_filter = ("pool", "state", "tier")
    search_fields = ("user__username", "public_id")
    readonly_fields = [f.name for f in Ticket._meta.fields]

    def has_add_permission(self, request):
        return False
