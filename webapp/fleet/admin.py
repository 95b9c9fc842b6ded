"""The operator's console for the fleet: capacity, heartbeats, drain and enable."""

from __future__ import annotations

from django.contrib import admin, messages

from webapp.fleet import services
from webapp.fleet.models import GpuPool, Slot, Worker
from webapp.queue.models import Ticket


@admin.register(GpuPool)
class GpuPoolAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "device_kind",
        "enabled",
        "draining",
        "live_capacity",
        "utilisation",
        "waiting",
    )
    prepopulated_fields = {"slug": ("name",)}
    # State changes go through the actions, which also take back outstanding offers.
    readonly_fields = ("enabled", "draining")
    actions = ["drain", "enable", "disable"]

    @admin.display(description="live slots")
    def live_capacity(self, pool):
        return pool.live_slots().count()

    @admin.display(description="utilisation")
    def utilisation(self, pool):
        live = pool.live_slots()
        total = live.count()
        if not total:
            return "-"
        busy = live.filter(session__isnull=False).count()
        return f"{busy}/{total} ({100 * busy // total}%)"

    @admin.display(description="waiting")
    def waiting(self, pool):
        return Ticket.objects.filter(pool=pool, state=Ticket.State.WAITING).count()

    @admin.action(
        description="Drain: finish current sessions, take no new ones", permissions=["change"]
    )
    def drain(self, request, queryset):
        for pool in queryset:
            services.set_pool_state(pool, draining=True)
        messages.info(request, f"Draining {queryset.count()} pool(s).")

    @admin.action(description="Enable: take new players", permissions=["change"])
    def enable(self, request, queryset):
        for pool in queryset:
            services.set_pool_state(pool, enabled=True, draining=False)
        messages.info(request, f"Enabled {queryset.count()} pool(s).")

    @admin.action(description="Disable: take no new players", permissions=["change"])
    def disable(self, request, queryset):
        for pool in queryset:
            services.set_pool_state(pool, enabled=False)


class SlotInline(admin.TabularInline):
    model = Slot
    fields = ("index", "ticket", "session")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "pool",
        "state",
        "slot_count",
        "busy_slots",
        "heartbeat_age_s",
        "version",
        "started_at",
    )
    list_filter = ("pool", "state")
    readonly_fields = (
        "public_id",
        "pool",
        "host",
        "pid",
        "slot_count",
        "version",
        "started_at",
        "last_heartbeat",
        "state",
    )
    inlines = [SlotInline]
    actions = ["drain", "enable"]

    def has_add_permission(self, request):
        return False  # workers announce themselves

    @admin.display(description="heartbeat age (s)")
    def heartbeat_age_s(self, worker):
        return round(worker.heartbeat_age(), 1)

    @admin.display(description="busy")
    def busy_slots(self, worker):
        return worker.slots.filter(session__isnull=False).count()

    @admin.action(
        description="Drain: finish current sessions, take no new ones", permissions=["change"]
    )
    def drain(self, request, queryset):
        for worker in queryset:
            services.set_draining(worker, True)

    @admin.action(description="Enable: take new sessions again", permissions=["change"])
    def enable(self, request, queryset):
        for worker in queryset:
            services.set_draining(worker, False)
