"""Signal handlers of the dashboard: kept roles (dashboard/roles.py) are forgotten when what they
were computed from changes."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.dispatch import receiver

from dashboard.roles import forget_roles

User = get_user_model()


def _pairs(user_ids) -> list[tuple]:
    return list(User.objects.filter(pk__in=list(user_ids)).values_list("pk", "date_joined"))


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="dashboard.roles.groups")
def _groups_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action == "pre_clear":
        # The members are gone once cleared: take them now.
        instance._failover_members = _pairs(instance.user_set.values_list("pk", flat=True)) if reverse else None
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:  # user.groups.add(...): one user
        forget_roles([instance])
    elif action == "post_clear":  # group.user_set.clear()
        forget_roles(getattr(instance, "_failover_members", None) or [])
    else:  # group.user_set.add(...): the users in pk_set
        forget_roles(_pairs(pk_set or ()))


@receiver(post_save, sender=User, dispatch_uid="dashboard.roles.user_saved")
@receiver(post_delete, sender=User, dispatch_uid="dashboard.roles.user_deleted")
def _user_changed(sender, instance, **kwargs) -> None:
    forget_roles([instance])


@receiver(post_save, sender=Group, dispatch_uid="dashboard.roles.group_saved")
def _group_saved(sender, instance, **kwargs) -> None:  # a renamed group may stop being a role
    forget_roles(_pairs(instance.user_set.values_list("pk", flat=True)))


@receiver(pre_delete, sender=Group, dispatch_uid="dashboard.roles.group_deleted")
def _group_deleted(sender, instance, **kwargs) -> None:
    forget_roles(_pairs(instance.user_set.values_list("pk", flat=True)))
