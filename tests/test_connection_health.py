"""Connection health, visible: the worker saves each link's health and events, prunes them, and the admin shows them."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer
from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError
from django.test import TestCase, override_settings
from django.utils import timezone

from dashboard.worker import Worker
from streams.events import QueueStats, SourceSnapshot
from streams.health import EVENT_KINDS, LinkHealth, scrub
from streams.leases import MemoryLeases
from streams.models import Connection, ConnectionEvent
from streams.snapshots import MemorySnapshotStore
from streams.vendors.spec import ConnectionSpec
from tests.personas import CLIENT_SECRET, FAST_HASHERS, make_personas
from tests.timing import FakeClock


def wall_clock() -> FakeClock:
    """Return a hand-moved clock starting now: saved events carry wall-clock times the database compares."""
    return FakeClock(time.time())


# -- LinkHealth: events and the missed-heartbeat ratio ----------------------------------------------


def test_the_event_kinds_are_the_models():
    assert set(EVENT_KINDS) == set(ConnectionEvent.Kind.values)


def test_a_change_of_state_is_noted_with_old_and_new():
    clock = wall_clock()
    health = LinkHealth(clock=clock)
    health.set_state("live")
    clock.now += 5
    health.set_state("degraded", "no heartbeat for 31 s")
    health.set_state("degraded", "no heartbeat for 40 s")  # Detail only: no event.
    events = health.take_events()
    assert [(e["kind"], e["data"]) for e in events] == [
        ("state_changed", {"old": "connecting", "new": "live"}),
        ("state_changed", {"old": "live", "new": "degraded"}),
    ]
    assert events[1]["detail"] == "live → degraded: no heartbeat for 31 s"
    assert events[1]["at"] == clock.now
    assert health.take_events() == []


def test_noted_events_are_bounded_and_scrubbed():
    health = LinkHealth(event_window=3)
    with pytest.raises(ValueError, match="unknown link event"):
        health.note("exploded")
    health.note("closed", "socket to wss://streaming.example.com/channels/ch-123?token=abc closed")
    health.note("error", "refused: Authorization: Bearer eyJhbGciOi.secretpart")
    health.note("backoff_scheduled", "retrying in 3.2 s", delay=3.2)
    health.note("resynced", "4 rows differed", differences=4)
    events = health.take_events()
    assert [e["kind"] for e in events] == ["error", "backoff_scheduled", "resynced"]
    assert health.counters["events_dropped"] == 1
    assert events[0]["detail"] == "refused: Authorization: Bearer •••"
    assert events[1]["data"] == {"delay": 3.2}
    assert scrub("socket to wss://streaming.example.com/channels/ch-123?token=abc closed") == (
        "socket to wss://streaming.example.com/… closed"
    )
    assert scrub("http://user:pw@127.0.0.1:8765/api/v2/queues failed") == "http://127.0.0.1:8765/… failed"


def test_a_noted_event_carries_no_number_json_cannot_hold():
    # PostgreSQL's jsonb refuses NaN and infinity: one such value would lose every event of its save.
    health = LinkHealth()
    health.note("backoff_scheduled", "odd", delay=float("nan"), cap=float("inf"), low=float("-inf"), fine=1.5)
    (event,) = health.take_events()
    assert event["data"] == {"delay": "nan", "cap": "inf", "low": "-inf", "fine": 1.5}
    json.dumps(event["data"], allow_nan=False)  # raises on NaN or infinity


def test_the_missed_heartbeat_ratio_is_part_of_the_snapshot():
    health = LinkHealth()
    assert health.as_dict()["missed_heartbeat_ratio"] is None
    health.heartbeats_expected, health.heartbeats_missed = 20, 3
    assert health.as_dict()["missed_heartbeat_ratio"] == pytest.approx(0.15)
    assert "events" not in health.as_dict()


# -- the worker saves health and events -------------------------------------------------------------


@pytest.fixture
def personas(transactional_db):
    return make_personas()


@pytest.fixture
async def worker(personas):
    worker = Worker(layer=InMemoryChannelLayer(), store=MemorySnapshotStore(), leases=MemoryLeases())
    yield worker
    await settled(worker)


def hold(worker: Worker, connection: Connection, clock: FakeClock | None = None) -> LinkHealth:
    """Make WORKER hold CONNECTION's stream as ``ConnectorPool.start`` would, without a network."""
    source = connection.source_key
    health = LinkHealth(clock=clock or wall_clock())
    health.on_change = worker.pool.on_health(source)
    worker.healths[source] = health
    worker.connectors[source] = SimpleNamespace(spec=ConnectionSpec.from_connection(connection, ("q-sales",)))
    return health


async def settled(worker: Worker) -> None:
    """Wait for every save the worker started."""
    while worker.pool.saving:
        await asyncio.gather(*list(worker.pool.saving))


async def fetch(pk: int) -> Connection:
    return await Connection.objects.aget(pk=pk)


async def events_of(pk: int) -> list[tuple[str, str]]:
    return [(e.kind, e.detail) async for e in ConnectionEvent.objects.filter(connection_id=pk).order_by("at", "pk")]


@pytest.mark.django_db(transaction=True)
async def test_a_change_of_state_saves_the_status_the_health_and_the_events(worker, personas):
    connection = personas.connection
    clock = wall_clock()
    health = hold(worker, connection, clock)
    health.record_message()
    for rtt in (0.030, 0.060, 0.040, 0.200, 0.050):
        health.record_ping(rtt)
    health.heartbeats_expected, health.heartbeats_missed = 10, 1
    health.reconnects = 2
    health.record_error("LinkLost: socket closed (1006)")
    health.note("connected", "2 sockets")
    health.set_state("live")
    await settled(worker)

    saved = await fetch(connection.pk)
    assert (saved.status, saved.status_detail) == ("live", "")
    assert saved.status_changed_at is not None and saved.health_at is not None
    assert saved.health["state"] == "live"
    assert saved.health["last_message_at"] == clock.now
    assert saved.health["ping_p50"] == pytest.approx(0.050)
    assert saved.health["ping_p95"] == pytest.approx(0.200)
    assert saved.health["missed_heartbeat_ratio"] == pytest.approx(0.1)
    assert saved.health["reconnects"] == 2
    assert saved.health["last_error"] == "LinkLost: socket closed (1006)"
    assert await events_of(connection.pk) == [("connected", "2 sockets"), ("state_changed", "connecting → live")]
    [event] = [e async for e in ConnectionEvent.objects.filter(kind="state_changed")]
    assert event.at.timestamp() == pytest.approx(clock.now)
    assert event.data == {"old": "connecting", "new": "live"}

    health.set_state("auth_failed", "AuthFailed: 401 invalid_client; retrying in 300 s")
    await settled(worker)
    saved = await fetch(connection.pk)
    assert saved.status == "auth_failed"
    assert saved.status_detail == "AuthFailed: 401 invalid_client; retrying in 300 s"
    assert len(await events_of(connection.pk)) == 3


@pytest.mark.django_db(transaction=True)
async def test_it_never_saves_the_client_secret(worker, personas):
    connection = personas.connection
    health = hold(worker, connection)
    health.record_error(f"token endpoint echoed client_id=floorview-client&client_secret2 {CLIENT_SECRET}")
    health.note("error", f"proxy said {CLIENT_SECRET}", body=CLIENT_SECRET)
    health.set_state("reconnecting", f"failed with {CLIENT_SECRET}; retrying in 2.0 s")
    await settled(worker)
    saved = await fetch(connection.pk)
    stored = repr(saved.health) + saved.status_detail
    stored += repr([(e.detail, e.data) async for e in ConnectionEvent.objects.filter(connection=connection)])
    assert CLIENT_SECRET not in stored
    assert "•••" in saved.health["last_error"]


@pytest.mark.django_db(transaction=True)
async def test_it_saves_the_health_periodically_without_moving_the_status_time(worker, personas):
    connection = personas.connection
    health = hold(worker, connection)
    health.set_state("live")
    await settled(worker)
    changed_at = (await fetch(connection.pk)).status_changed_at

    health.reconnects = 4
    health.record_ping(0.025)
    health.note("token_refreshed", "expires in 86400 s")
    assert await worker.pool.save_health()
    saved = await fetch(connection.pk)
    assert (saved.health["reconnects"], saved.health["ping_p50"]) == (4, 0.025)
    assert saved.status_changed_at == changed_at
    assert ("token_refreshed", "expires in 86400 s") in await events_of(connection.pk)

    # Not due again within the period: nothing is written.
    health.reconnects = 5
    assert not await worker.pool.save_health()
    assert (await fetch(connection.pk)).health["reconnects"] == 4
    worker.pool.health_save_period = 0.0
    assert await worker.pool.save_health()
    assert (await fetch(connection.pk)).health["reconnects"] == 5


@pytest.mark.django_db(transaction=True)
async def test_only_the_sources_the_worker_streams_are_saved(worker, personas):
    connection = personas.connection
    health = hold(worker, connection)
    health.reconnects = 7
    del worker.connectors[connection.source_key]  # The stream moved to another worker.
    await worker.pool.save_health()
    saved = await fetch(connection.pk)
    assert saved.health == {} and saved.health_at is None


@pytest.mark.django_db(transaction=True)
async def test_a_resync_is_noted_with_how_many_rows_differed(worker, personas):
    connection = personas.connection
    source = connection.source_key
    health = hold(worker, connection)
    queues = {
        "q-sales": QueueStats(source, "q-sales", name="Sales", waiting=2),
        "q-support": QueueStats(source, "q-support", name="Support", waiting=0),
    }
    worker.sink(SourceSnapshot(source, queues=queues))
    worker.sink(SourceSnapshot(source, queues=queues))
    worker.sink(SourceSnapshot(source, queues=queues | {"q-sales": QueueStats(source, "q-sales", waiting=5)}))
    worker.sink(QueueStats(source, "q-sales", waiting=6))  # Not a snapshot: no event.
    events = [e for e in health.take_events() if e["kind"] == "resynced"]
    assert [e["data"]["differences"] for e in events] == [2, 0, 1]
    assert events[0]["detail"] == "2 rows differed"


@pytest.mark.django_db(transaction=True)
async def test_a_database_error_is_logged_and_the_worker_goes_on(worker, personas, caplog):
    connection = personas.connection
    health = hold(worker, connection)
    down = DatabaseError("database is locked")
    with (
        mock.patch.object(Connection, "record_health", side_effect=down),
        mock.patch.object(ConnectionEvent, "prune", side_effect=down),
        caplog.at_level(logging.WARNING, logger="dashboard.worker"),
    ):
        health.set_state("live")
        await settled(worker)
        assert await worker.pool.save_health()
    assert f"saving the health of {connection.source_key} failed; carrying on" in caplog.text
    assert "pruning connection events failed; carrying on" in caplog.text
    health.set_state("degraded", "no heartbeat for 31 s")
    await settled(worker)
    assert (await fetch(connection.pk)).status == "degraded"


@pytest.mark.django_db(transaction=True)
async def test_the_worker_prunes_events_at_most_once_a_period(worker, personas):
    connection = personas.connection
    hold(worker, connection)
    old = timezone.now() - timedelta(days=3)

    @sync_to_async
    def add_old_event() -> None:
        ConnectionEvent.objects.create(connection=connection, at=old, kind="closed", detail="long ago")

    await add_old_event()
    with override_settings(FLOORVIEW=settings.FLOORVIEW | {"EVENT_RETENTION_DAYS": 2}):
        await worker.pool.save_health()
        assert not await ConnectionEvent.objects.filter(detail="long ago").aexists()
        await add_old_event()
        await worker.pool.save_health()  # Within the minute: no second DELETE.
        assert await ConnectionEvent.objects.filter(detail="long ago").aexists()
        worker.pool.event_prune_period = 0.0
        await worker.pool.save_health()
        assert not await ConnectionEvent.objects.filter(detail="long ago").aexists()


# -- retention ---------------------------------------------------------------------------------------


class RetentionTests(TestCase):
    """Events are kept for some days and up to a number per connection."""

    @classmethod
    def setUpTestData(cls):
        cls.p = make_personas()
        cls.other = Connection.of(name="Other", base_url="http://127.0.0.1:8", client_id="x")
        cls.other.save()

    def add(self, connection: Connection, age: timedelta, detail: str) -> None:
        ConnectionEvent.objects.create(connection=connection, at=timezone.now() - age, kind="error", detail=detail)

    def details(self, connection: Connection) -> list[str]:
        return list(connection.events.values_list("detail", flat=True))

    def test_it_prunes_by_age_on_every_connection(self):
        self.add(self.p.connection, timedelta(days=8), "old")
        self.add(self.p.connection, timedelta(days=6), "recent")
        self.add(self.other, timedelta(days=8), "old elsewhere")
        assert ConnectionEvent.prune([self.p.connection.pk], days=7) == 2
        assert self.details(self.p.connection) == ["recent"]
        assert self.details(self.other) == []

    def test_it_keeps_the_newest_per_connection(self):
        for minutes in range(12):
            self.add(self.p.connection, timedelta(minutes=minutes), f"e{minutes}")
        for minutes in range(3):
            self.add(self.other, timedelta(minutes=minutes), f"o{minutes}")
        assert ConnectionEvent.prune([self.p.connection.pk, self.other.pk], days=7, keep=10) == 2
        assert self.details(self.p.connection) == [f"e{m}" for m in range(10)]  # Newest first.
        assert len(self.details(self.other)) == 3

    def test_it_keeps_a_thousand_by_default(self):
        assert ConnectionEvent.KEEP_PER_CONNECTION == 1000
        assert settings.FLOORVIEW["EVENT_RETENTION_DAYS"] == 7.0


# -- the admin --------------------------------------------------------------------------------------


def snapshot(**changes) -> dict:
    health = LinkHealth(clock=lambda: 0.0).as_dict()
    now = timezone.now().timestamp()
    return health | {"changed_at": now - 60, "last_message_at": now - 4, "connected_since": now - 60} | changes


@override_settings(PASSWORD_HASHERS=FAST_HASHERS)
class HealthAdminTests(TestCase):
    """The connection list and page show the saved health and recent events; the event log is read-only."""

    @classmethod
    def setUpTestData(cls):
        cls.p = make_personas()
        cls.admin = User.objects.create_superuser("root", "root@example.com", "pw")
        connection = cls.p.connection
        connection.record_health(
            snapshot(
                state="live",
                reconnects=3,
                ping_p50=0.042,
                ping_p95=0.180,
                pings=25,
                heartbeats_expected=40,
                heartbeats_missed=2,
                missed_heartbeat_ratio=0.05,
                last_error="LinkLost: no heartbeat or pong for 61.0 s after the channel went quiet for a while",
                counters={"unknown_topic": 4},
            ),
            [
                {"kind": "state_changed", "at": timezone.now().timestamp() - 120 + i, "detail": f"step {i}"}
                for i in range(60)
            ],
            state_changed=True,
        )
        cls.broken = Connection.of(
            name="Broken", base_url="http://127.0.0.1:7", client_id="b", client_secret="another-secret"
        )
        cls.broken.save()
        cls.broken.record_health(snapshot(state="auth_failed", detail="401"), [], state_changed=True)

    def setUp(self):
        self.client.force_login(self.admin)

    def test_the_list_shows_status_ping_reconnects_and_last_error(self):
        html = self.client.get("/admin/streams/connection/").content.decode()
        assert re.search(r'<strong class="fv-status fv-status-live"[^>]*>● Live</strong>', html)
        # Coloured by a stylesheet: the Content-Security-Policy refuses inline style attributes.
        assert "style=" not in html and "dashboard/admin.css" in html
        assert "● Auth failed" in html
        assert '<td class="field-ping">42 ms</td>' in html
        assert '<td class="field-reconnects">3</td>' in html
        assert re.search(r'<td class="field-last_message">[45] s ago</td>', html)
        assert "LinkLost: no heartbeat or pong for 61.0 s after the channel…</span>" in html
        assert CLIENT_SECRET not in html and "another-secret" not in html

    def test_the_list_filters_by_status(self):
        html = self.client.get("/admin/streams/connection/?status__exact=auth_failed").content.decode()
        assert "Broken" in html
        assert "Genesys test" not in html

    def test_the_change_page_shows_the_snapshot_and_the_newest_events(self):
        html = self.client.get(f"/admin/streams/connection/{self.p.connection.pk}/change/").content.decode()
        assert "Health (reported by the worker)" in html
        assert "<strong>Live</strong>" in html
        assert "p50 42 ms, p95 180 ms (over the last 25 pings)" in html
        assert "2 of 40 (5.0%)" in html
        assert "unknown_topic: 4" in html
        assert "after the channel went quiet for a while" in html
        shown = re.findall(r"<td>step (\d+)</td>", html)
        assert shown == [str(i) for i in range(59, 9, -1)]  # The newest 50, newest first.
        assert f"?connection__id__exact={self.p.connection.pk}" in html
        assert CLIENT_SECRET not in html

    def test_a_connection_without_health_says_so(self):
        html = self.client.get("/admin/streams/connection/add/").content.decode()
        assert "No health reported yet" in html
        assert "No events yet." in html

    def test_the_event_log_is_read_only(self):
        event = self.p.connection.events.first()
        changelist = self.client.get("/admin/streams/connectionevent/").content.decode()
        assert "step 59" in changelist
        assert 'id="changelist-filter"' in changelist and "By kind" in changelist and "By connection" in changelist
        assert '<nav class="toplinks">' in changelist  # The date hierarchy.
        assert self.client.get("/admin/streams/connectionevent/add/").status_code == 403
        change_url = f"/admin/streams/connectionevent/{event.pk}/change/"
        page = self.client.get(change_url).content.decode()
        assert 'name="_save"' not in page
        assert self.client.post(change_url, {"detail": "rewritten"}).status_code == 403
        event.refresh_from_db()
        assert event.detail != "rewritten"

    def test_a_connection_with_events_can_still_be_deleted(self):
        url = f"/admin/streams/connection/{self.broken.pk}/delete/"
        self.broken.record_health(snapshot(state="live"), [{"kind": "connected", "at": 1.0}], state_changed=True)
        assert self.client.post(url, {"post": "yes"}).status_code == 302
        assert not ConnectionEvent.objects.filter(connection_id=self.broken.pk).exists()
