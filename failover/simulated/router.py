"""Keeps the simulated DIRAC's tables in the ``simdirac`` database and everything else out of it."""

from __future__ import annotations

SIM_APP = "simdirac"
SIM_DB = "simdirac"


class SimDiracRouter:
    def db_for_read(self, model, **hints):
        return SIM_DB if model._meta.app_label == SIM_APP else None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        if SIM_APP in (obj1._meta.app_label, obj2._meta.app_label):
            return obj1._meta.app_label == obj2._meta.app_label
        return None

    def allow_migrate(self, db, app_label, **hints):
        if app_label == SIM_APP:
            return db == SIM_DB
        return db != SIM_DB
