"""The failover app's admin: administrators edit policies here."""

from __future__ import annotations

from django.contrib import admin

from failover.models import Policy, RecoveryPolicy


@admin.register(Policy)
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


@admin.register(RecoveryPolicy)
class RecoveryPolicyAdmin(admin.ModelAdmin):
    """DIRAC's DataRecoveryAgent options and the output source (README, "Recovery")."""

    list_display = ("name", "enabled", "mode", "output_source", "polling_time", "files_max_reset_counter", "updated")
    list_filter = ("enabled", "mode", "output_source")
    readonly_fields = ("updated",)
    fieldsets = (
        (None, {"fields": ("name", "enabled", "mode", "output_source", "polling_time", "source", "updated")}),
        ("Which transformations", {"fields": ("transformation_statuses", "transformations_to_ignore",
                                              "types_with_input", "types_no_input")}),
        ("Limits", {"fields": ("files_max_reset_counter",)}),
        ("Mail", {"fields": ("mail_to", "mail_from")}),
    )
