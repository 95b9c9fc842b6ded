from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from webapp.accounts.models import GroupPolicy, User


@admin.register(User)
class ReverieUserAdmin(UserAdmin):
    readonly_fields = ("public_id",)


@admin.register(GroupPolicy)
class GroupPolicyAdmin(admin.ModelAdmin):
    list_display = ("group", "tier", "sessions_per_day", "minutes_per_day")
