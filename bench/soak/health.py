"""The CXone connection's health as the demo's worker saves it, read-only from the demo's SQLite database."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# Health counters the CXone poller keeps when a call fails (streams/vendors/cxone/poller.py).
FAILURE_COUNTERS = ("breaker_opened", "poll_error", "unavailable", "throttled")
# The worker saves every link health every 5 s (dashboard/connector_pool.py): wait a little longer to read.
HEALTH_SAVE_WAIT = 6.0


@dataclass(frozen=True)
class HealthEvent:
    """One event the worker noted on the CXone link (``streams.health.LinkHealth.note``), at epoch seconds."""

    at: float
    kind: str
    detail: str
    data: dict


class HealthReader:
    """The CXone connection's health as the worker saves it, read-only from the demo's SQLite database."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.connection_id: int | None = None

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        # Read-only, and short-lived: the demo's worker writes the same file.
        db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def _id(self) -> int | None:
        if self.connection_id is None:
            rows = self._query("SELECT id FROM streams_connection WHERE kind = 'cxone' ORDER BY id LIMIT 1")
            self.connection_id = rows[0][0] if rows else None
        return self.connection_id

    def health(self) -> dict:
        """Return the link's last saved health (``LinkHealth.as_dict()``), or {} if none is saved (or locked)."""
        try:
            pk = self._id()
            rows = self._query("SELECT health FROM streams_connection WHERE id = ?", (pk,)) if pk else []
        except sqlite3.Error:
            return {}
        return json.loads(rows[0][0] or "{}") if rows else {}

    def events(self, since: float) -> list[HealthEvent]:
        """Return the events noted since SINCE (epoch seconds), oldest first."""
        try:
            pk = self._id()
            sql = "SELECT at, kind, detail, data FROM streams_connectionevent WHERE connection_id = ? ORDER BY at, id"
            rows = self._query(sql, (pk,)) if pk else []
        except sqlite3.Error:
            return []
        events = [HealthEvent(epoch(at), kind, detail, json.loads(data or "{}")) for at, kind, detail, data in rows]
        return [event for event in events if event.at >= since]


def epoch(stored: str) -> float:
    """Return the epoch seconds of a DateTimeField as Django stores it in SQLite (UTC, naive text)."""
    moment = datetime.fromisoformat(stored)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
