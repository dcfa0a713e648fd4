"""The dashboard's admin: acknowledgements (policies are the failover app's, failover/admin.py; roles are groups)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

from dashboard import roles
from dashboard.models import Acknowledgement


@admin.register(Acknowledgement)
class AcknowledgementAdmin(admin.ModelAdmin):
    list_display = ("transformation_id", "cycle_id", "report_time", "user", "created")
    list_filter = ("user",)
    search_fields = ("transformation_id",)

    def has_change_permission(self, request, obj=None):
        return False


# -- accounts: the admin role gives roles, never more ---------------------------------------------
# The admin role holds Django's user and group permissions so that it can create accounts and give
# them a role. Without limits that would let it edit its own is_superuser, give itself any
# permission, change a role group's permissions or a superuser's password. So, for anyone but a
# superuser: the privilege fields are read-only, the groups offered are the three roles, staff
# status follows the admin role, superusers' accounts are out of reach, and groups are read-only.


class RoleLimitedUserAdmin(UserAdmin):
    PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "user_permissions")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser or obj is None:
            return fieldsets
        out = []
        for name, options in fieldsets:
            fields = [f for f in options["fields"] if f != "user_permissions"]
            out.append((name, {**options, "fields": fields}))
        return out

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly += ["is_superuser", "is_staff", "last_login", "date_joined"]
        return readonly

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups" and not request.user.is_superuser:
            kwargs["queryset"] = Group.objects.filter(name__in=roles.ROLES).order_by("name")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(is_superuser=False)

    def _may_touch(self, request, obj) -> bool:
        return request.user.is_superuser or obj is None or not obj.is_superuser

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_touch(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._may_touch(request, obj)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        user = form.instance
        if not request.user.is_superuser:
            # Staff status (entry to this site) follows the admin role, as `users add --role admin`
            # sets it; direct permissions never come from here.
            user.user_permissions.clear()
            staff = user.groups.filter(name=roles.ADMIN).exists()
            if user.is_staff != staff:
                user.is_staff = staff
                user.save(update_fields=["is_staff"])


class SuperuserOnlyGroupAdmin(GroupAdmin):
    """A role's permissions are the roles' definition: only a superuser changes them."""

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


for _model, _admin in ((User, RoleLimitedUserAdmin), (Group, SuperuserOnlyGroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
