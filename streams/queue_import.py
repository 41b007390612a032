"""Import a connection's queues from the vendor into the database."""

from __future__ import annotations

from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.db import transaction

from streams.models import Connection, Queue
from streams.vendors.spec import ConnectionSpec


@dataclass(frozen=True)
class ImportResult:
    """How many queues an import created and renamed."""

    created: int
    updated: int
    total: int


def save_imported_queues(connection: Connection, vendor_queues: list[dict]) -> ImportResult:
    """Create or rename Queue rows for VENDOR_QUEUES ({"id", "name"}); keep local settings."""
    created = updated = 0
    with transaction.atomic():
        existing = {q.vendor_id: q for q in connection.queues.all()}
        for item in vendor_queues:
            vendor_id, name = str(item["id"]), str(item.get("name") or item["id"])[:200]
            queue = existing.get(vendor_id)
            if queue is None:
                Queue.objects.create(connection=connection, vendor_id=vendor_id, name=name)
                created += 1
            elif queue.name != name:
                queue.name = name
                queue.save(update_fields=["name"])
                updated += 1
    return ImportResult(created=created, updated=updated, total=len(vendor_queues))


class NothingToImport(Exception):
    """The connection's kind has no call that lists its queues (a feed names queues only in its records)."""


async def fetch_vendor_queues(connection: Connection) -> list[dict]:
    """Return every queue the vendor lists for CONNECTION (all pages; CXone: its skills), by the kind's import."""
    fetch_queues = connection.vendor().queue_import()
    if fetch_queues is None:
        raise NothingToImport("a feed has no list of queues to import: add its queues by the ids its records use")
    return await fetch_queues(ConnectionSpec.from_connection(connection, ()))


def import_queues(connection: Connection) -> ImportResult:
    """Fetch CONNECTION's queues from the vendor and save them (for sync callers such as the admin)."""
    return save_imported_queues(connection, async_to_sync(fetch_vendor_queues)(connection))
