"""The dashboard's admin: acknowledgements (policies are the failover app's, failover/admin.py; roles are groups)."""

from __future__ import annotations

from django.contrib import admin

from dashboard.models import Acknowledgement


@admin.register(Acknowledgement)
class AcknowledgementAdmin(admin.ModelAdmin):
    list_display = ("transformation_id", "cycle_id", "report_time", "user", "created")
    list_filter = ("user",)
    search_fields = ("transformation_id",)

    def has_change_permission(self, request, obj=None):
        return False
