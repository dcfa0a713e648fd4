"""Where the real-DIRAC adapter keeps parent links across processes: our database.

A store has ``get(ids) -> {id: (production, parent)}``, ``put(links)`` and
``keep_productions(ids)``; the adapter keeps its per-process cache in front of it. Any database
trouble only costs the RPCs again: a link store never fails a DIRAC read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)

Link = tuple[int | None, int | None]


class DatabaseLinkStore:
    def get(self, ids: Iterable[int]) -> dict[int, Link]:
        from failover.models import ParentLink

        wanted = sorted(set(ids))
        out: dict[int, Link] = {}
        try:
            for start in range(0, len(wanted), 900):
                for tid, production, parent in ParentLink.objects.filter(
                    transformation_id__in=wanted[start : start + 900]
                ).values_list("transformation_id", "production_id", "parent_id"):
                    out[tid] = (production, parent)
        except Exception as exc:  # a cache: never the reason a read fails
            log.warning("parent links not read from the database (%s); asking DIRAC", exc)
            return {}
        return out

    def put(self, links: Mapping[int, Link]) -> None:
        from django.db import transaction

        from failover.models import ParentLink

        if not links:
            return
        try:
            with transaction.atomic():
                ParentLink.objects.filter(transformation_id__in=list(links)).delete()
                ParentLink.objects.bulk_create(
                    ParentLink(transformation_id=tid, production_id=production, parent_id=parent)
                    for tid, (production, parent) in links.items()
                )
        except Exception as exc:
            log.warning("parent links not stored in the database (%s)", exc)

    def keep_productions(self, production_ids: Iterable[int]) -> None:
        """Forget the links of productions that no longer exist (DIRAC deleted them)."""
        from failover.models import ParentLink

        try:
            ParentLink.objects.exclude(production_id=None).exclude(
                production_id__in=list(production_ids)
            ).delete()
        except Exception as exc:
            log.warning("old parent links not removed (%s)", exc)
