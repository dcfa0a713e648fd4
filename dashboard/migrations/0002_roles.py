"""The three roles as groups; administrators may edit policies and accounts in the admin site."""

from django.db import migrations

ROLES = ("viewer", "operator", "admin")
# (app_label, model) pairs whose add/change/delete/view permissions the admin role gets.
ADMIN_MODELS = (("failover", "policy"), ("auth", "user"), ("auth", "group"))


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
    admin = Group.objects.get(name="admin")
    for app_label, model in ADMIN_MODELS:
        admin.permissions.add(
            *Permission.objects.filter(content_type__app_label=app_label, content_type__model=model)
        )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("failover", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
