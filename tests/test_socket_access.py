"""Access that ends closes the board sockets it opened: signals, the announcement, the re-check, the safety net.

Runs the real consumer with the in-memory channel layer; changes are made
the way the admin or a shell makes them, in a thread, through the ORM.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client

from dashboard import access, access_signals, protocol
from dashboard.access import Grant, verdicts
from tests.personas import Personas, make_personas
from tests.redis_util import REDIS_TEST_URL, delete_prefix, unique_prefix
from tests.socket_util import Feed, open_socket, receive, signed_in_socket
from tests.timing import eventually, scaled

pytestmark = [pytest.mark.django_db(transaction=True)]


async def streaming(p: Personas, user=None, slug: str = "sales") -> WebsocketCommunicator:
    ws = await open_socket(user or p.supervisor, slug=slug)
    assert (await receive(ws)).kind == "snapshot"
    return ws


async def closed_with(ws: WebsocketCommunicator) -> int:
    message = await ws.receive_output(timeout=scaled(3))
    assert message["type"] == "websocket.close", message
    return message["code"]


async def still_streaming(ws: WebsocketCommunicator, feed: Feed) -> None:
    await feed.push([feed.queue("q-sales", waiting=feed.seq)])
    assert (await receive(ws)).kind == "delta"


async def test_leaving_the_boards_group_closes_the_socket_and_spares_others(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    boss = await sync_to_async(User.objects.create_superuser)("boss", password="x")
    sue, bosses = await streaming(p), await streaming(p, boss)
    team = await sync_to_async(Group.objects.get)(name="Sales supervisors")
    await sync_to_async(p.supervisor.groups.remove)(team)
    assert await closed_with(sue) == 4403
    await still_streaming(bosses, feed)
    await bosses.disconnect()


async def test_a_group_losing_a_member_from_its_side_closes_the_members_socket(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    ws = await streaming(p)
    team = await sync_to_async(Group.objects.get)(name="Sales supervisors")
    await sync_to_async(team.user_set.remove)(p.supervisor)
    assert await closed_with(ws) == 4403


async def test_a_board_losing_its_group_closes_its_viewers_only(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    billing_feed = Feed(dataclasses.replace(p, board=p.other_board))
    await billing_feed.push([billing_feed.queue("q-sales")], reset=True)
    sales = await streaming(p)
    billing = await streaming(p, p.other_supervisor, slug="billing")
    await sync_to_async(p.board.groups.clear)()
    assert await closed_with(sales) == 4403
    await still_streaming(billing, billing_feed)
    await billing.disconnect()


async def test_deleting_a_group_closes_its_members_sockets(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    ws = await streaming(p)
    await sync_to_async(Group.objects.filter(name="Sales supervisors").delete)()
    assert await closed_with(ws) == 4403


async def test_deactivating_or_deleting_the_user_closes_as_signed_out(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    sue = await streaming(p)
    p.supervisor.is_active = False
    await sync_to_async(p.supervisor.save)()
    assert await closed_with(sue) == 4401

    otto = await streaming(p, p.other_supervisor, slug="billing")
    await sync_to_async(p.other_supervisor.delete)()
    assert await closed_with(otto) == 4401


async def test_deleting_the_board_closes_its_sockets_as_gone(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    ws = await streaming(p)
    await sync_to_async(p.board.delete)()
    assert await closed_with(ws) == 4404


async def test_a_revoked_socket_gets_no_more_deltas_nor_snapshots(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    ws = await streaming(p)
    await sync_to_async(p.board.groups.clear)()
    assert await closed_with(ws) == 4403
    await feed.push([feed.queue("q-sales", waiting=5)])
    await ws.send_json_to({"type": "resync"})
    assert await ws.receive_nothing(timeout=scaled(0.3))


async def test_signing_out_closes_the_sockets_of_that_session_only(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    sockets = []
    clients = []
    for _ in range(2):
        client, ws = await open_with_session(p)
        sockets.append(ws)
        clients.append(client)
    # Django's logout sends user_logged_out, then flushes the session.
    await sync_to_async(clients[0].logout)()
    assert await closed_with(sockets[0]) == 4401
    await still_streaming(sockets[1], feed)
    await sockets[1].disconnect()


async def test_a_change_no_signal_announces_is_caught_by_the_periodic_recheck(p, settings):
    settings.FLOORVIEW = {**settings.FLOORVIEW, "ACCESS_RECHECK": scaled(0.3)}
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    ws = await streaming(p)

    def remove_by_sql() -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM auth_user_groups WHERE user_id = %s", [p.supervisor.pk])

    await sync_to_async(remove_by_sql)()
    assert await closed_with(ws) == 4403


async def test_an_unreachable_layer_never_fails_the_change_itself(p, caplog):
    class DownLayer(InMemoryChannelLayer):
        async def group_send(self, group, message):
            raise ConnectionError("Connection refused")

    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    old = channel_layers.set("default", DownLayer())
    try:
        with caplog.at_level(logging.WARNING, logger="dashboard.access_signals"):
            await sync_to_async(p.board.groups.clear)()
        assert "could not announce an access change" in caplog.text
    finally:
        channel_layers.set("default", old)


async def test_the_process_joins_the_access_group_once_and_leaves_with_its_last_viewer(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    sockets = [await streaming(p) for _ in range(3)]
    assert len(feed.layer.groups[protocol.ACCESS_GROUP]) == 1
    for ws in sockets:
        await ws.disconnect()
    await eventually(lambda: not feed.layer.groups.get(protocol.ACCESS_GROUP), within=3, what="the watch to leave")


def test_a_recheck_costs_the_same_few_queries_for_one_viewer_or_many(db, django_assert_num_queries):
    p = make_personas()
    grants = [Grant(user_id=p.supervisor.pk, board_id=p.board.pk)]
    with django_assert_num_queries(4):
        assert verdicts(grants) == {}
    many = [
        Grant(user_id=u.pk, board_id=b.pk)
        for u in (p.supervisor, p.other_supervisor, p.outsider)
        for b in (p.board, p.other_board)
    ]
    with django_assert_num_queries(4):
        closing = verdicts(many)
    assert set(closing) == set(many) - {many[0], many[3]}
    assert set(closing.values()) == {4403}


async def test_deltas_flow_promptly_beside_the_access_watch_on_the_redis_layer(p, settings):
    # The Redis layer reads a process's local channels of one prefix under one lock: a watch on a
    # prefix of its own held that lock for its 5 s polls and starved the board feeds.
    prefix = unique_prefix()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_TEST_URL], "prefix": prefix},
        }
    }
    try:
        feed = Feed(p)
        await feed.push([feed.queue("q-sales")], reset=True)
        ws = await streaming(p)
        assert access.watches.current() is not None
        for waiting in range(3):
            started = time.monotonic()
            await feed.push([feed.queue("q-sales", waiting=waiting)])
            assert (await receive(ws)).kind == "delta"
            # Starved, a delta waited out the watch's 5 s poll; promptly is well under that, even when busy.
            assert time.monotonic() - started < scaled(2.5)
        await ws.disconnect()
    finally:
        await delete_prefix(prefix)


async def open_with_session(p: Personas) -> tuple[Client, WebsocketCommunicator]:
    client, ws = await signed_in_socket(p.supervisor)
    assert (await receive(ws)).kind == "snapshot"
    return client, ws


async def test_the_sites_sign_out_closes_the_open_socket(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    client, ws = await open_with_session(p)
    response = await sync_to_async(client.post)("/logout/")
    assert response.status_code == 302
    assert await closed_with(ws) == 4401


async def test_a_sign_out_closes_on_the_announcement_even_before_the_session_is_flushed(p):
    # The process that signs out may still be flushing the session when another process re-checks.
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    client, ws = await open_with_session(p)
    key = client.cookies["sessionid"].value
    await sync_to_async(access_signals.announce)(sessions=[access.session_tag(key)])
    assert await closed_with(ws) == 4401


async def test_a_revocation_announced_while_a_viewer_connects_is_enforced_at_once(p, settings):
    # The safety net is far away: only the connect's own re-check can close this socket in time.
    settings.FLOORVIEW = {**settings.FLOORVIEW, "ACCESS_RECHECK": 3600.0}
    joining, release = asyncio.Event(), asyncio.Event()

    class SlowAccessJoin(InMemoryChannelLayer):
        async def group_add(self, group, channel):
            if group == protocol.ACCESS_GROUP:
                joining.set()
                await release.wait()
            await super().group_add(group, channel)

    old = channel_layers.set("default", SlowAccessJoin())
    try:
        feed = Feed(p)
        await feed.push([feed.queue("q-sales")], reset=True)
        ws = await open_socket(p.supervisor)
        # The board check has passed and the watch is joining the access group: an announcement now finds
        # no process listening.
        await asyncio.wait_for(joining.wait(), scaled(3))
        team = await sync_to_async(Group.objects.get)(name="Sales supervisors")
        await sync_to_async(p.supervisor.groups.remove)(team)
        release.set()
        assert await closed_with(ws) == 4403  # Before any snapshot.
    finally:
        channel_layers.set("default", old)
