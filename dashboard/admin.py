"""The admin site is where administrators edit policies and accounts (roles are groups)."""

from __future__ import annotations

from django.contrib import admin

from dashboard.models import Acknowledgement
from failover.models import Policy


class PolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "enabled", "mode", "polling_time", "max_reassign", "max_flush", "updated")
    list_filter = ("enabled", "mode")
    readonly_fields = ("updated",)
    fieldsets = (
        (None, {"fields": ("name", "enabled", "mode", "polling_time", "source", "updated")}),
        ("Which transformations", {"fields": ("transformation_statuses", "transformation_types")}),
        ("Actions by type", {"fields": ("complete_types", "flush_types", "reassign_types", "report_types")}),
        ("Limits", {"fields": ("max_reassign", "max_flush")}),
        ("Mail", {"fields": ("mail_to", "mail_from")}),
    )


# The failover app may register its own admin one day; it is loaded first and then wins.
if not admin.site.is_registered(Policy):
    admin.site.register(Policy, PolicyAdmin)


@admin.register(Acknowledgement)
class AcknowledgementAdmin(admin.ModelAdmin):
    list_display = ("transformation_id", "cycle_id", "report_time", "user", "created")
    list_filter = ("user",)
    search_fields = ("transformation_id",)

    def has_change_permission(self, request, obj=None):
        return False
