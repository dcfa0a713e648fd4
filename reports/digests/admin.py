from django.contrib import admin

from reports.digests.models import DigestRecord, ImportedAddress, Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "user", "email", "frequency", "active", "source", "created")
    list_filter = ("frequency", "active")
    search_fields = ("name", "email", "user__username", "user__email", "source")
    raw_id_fields = ("user",)


@admin.register(DigestRecord)
class DigestRecordAdmin(admin.ModelAdmin):
    list_display = ("id", "period", "email", "state", "attempts", "subject", "created", "sent")
    list_filter = ("state", "kind")
    search_fields = ("email", "period", "subject", "last_error")
    readonly_fields = [f.name for f in DigestRecord._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ImportedAddress)
class ImportedAddressAdmin(admin.ModelAdmin):
    list_display = ("address", "policy", "subscription", "imported")
