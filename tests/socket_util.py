"""Board socket test helpers: frames taken apart, a stand-in worker that feeds a board, sockets opened and read.

The worker here writes the store and then sends to the group, in that order,
exactly as the publisher does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

from dashboard import protocol
from dashboard.protocol import PROTOCOL_VERSION, VERSION_PARAM
from dashboard.routing import websocket_urlpatterns
from dashboard.rows import agent_row, queue_row
from streams import snapshots
from streams.floor import AgentState, QueueState
from tests.personas import Personas
from tests.timing import scaled

# What the page's script adds to its socket's address: the protocol version it speaks.
ANNOUNCE = f"{VERSION_PARAM}={PROTOCOL_VERSION}"


@dataclass
class Frame:
    """A socket frame taken apart: the JSON head and the top-level swaps."""

    head: dict
    swaps: list[tuple[str, str, str]] = field(default_factory=list)  # (tag, id or target, hx-swap-oob)
    row_ids: list[str] = field(default_factory=list)  # every <tr id> in the frame, in order

    @property
    def kind(self) -> str:
        return self.head["type"]

    @property
    def seq(self) -> int:
        return self.head["seq"]

    @property
    def epoch(self) -> str:
        return self.head["epoch"]

    def swap_of(self, row_id: str) -> str | None:
        return next((oob for tag, ident, oob in self.swaps if ident == row_id), None)


class _FrameParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.templates = 0
        self.frame = Frame(head={})

    def handle_starttag(self, tag, attrs):
        if tag == "template":
            self.templates += 1
            self.template_tags = set()
            return  # Transparent: htmx opens templates and swaps what they hold.
        if self.depth == 0 and self.templates:
            # The HTML parser ignores a <tbody> that follows a bare <tr> in the same template.
            assert not (tag == "tbody" and "tr" in self.template_tags), "<tbody> after <tr> in one template"
            self.template_tags.add(tag)
        assert self.templates or self.depth, f"<{tag}> outside a template would be dropped"
        attrs = dict(attrs)
        if self.depth == 0:
            self.frame.swaps.append((tag, attrs.get("id") or "", attrs.get("hx-swap-oob") or ""))
        if tag == "tr" and attrs.get("id"):
            self.frame.row_ids.append(attrs["id"])
        self.depth += 1

    def handle_endtag(self, tag):
        if tag == "template":
            self.templates -= 1
            return
        self.depth -= 1


def head_of(text: str | bytes) -> dict | None:
    """Return a frame's JSON head, or None for anything that does not open with one."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        head = json.loads(text.partition("\n")[0])
    except ValueError:
        return None
    return head if isinstance(head, dict) else None


def parse(text: str) -> Frame:
    """Take a frame apart as the page does: the JSON line that opens it, then the swaps after it."""
    head, _, html = text.partition("\n")
    parser = _FrameParser()
    parser.feed(html)
    parser.frame.head = json.loads(head)
    assert isinstance(parser.frame.head, dict) and parser.frame.head.get("type"), head[:80]
    return parser.frame


class Feed:
    """Plays the worker: renders rows, writes the store, then tells the board's group."""

    def __init__(self, p: Personas, epoch: str = "e1") -> None:
        self.p = p
        self.epoch = epoch
        self.seq = 0
        self.layer = get_channel_layer()
        self.store = snapshots.get_snapshot_store()
        self.configs = {"q-sales": p.config(p.sales), "q-support": p.config(p.support)}

    def queue(self, vendor_id: str, **stats) -> dict:
        return queue_row(QueueState(source=self.p.source, queue_id=vendor_id, **stats), self.configs[vendor_id])

    def agent(self, agent_id: str, *queues: str, name: str = "", presence="on_queue", routing="IDLE") -> dict:
        state = AgentState(
            source=self.p.source,
            agent_id=agent_id,
            name=name or agent_id.title(),
            presence=presence,
            routing_status=routing,
            routing_since=time.time(),
            queue_ids=frozenset(queues),
        )
        return agent_row(state, self.configs)

    async def store_only(self, rows=(), removed=(), *, reset=False) -> dict:
        self.seq += 1
        now = time.time()
        await self.store.write(
            self.p.board.pk,
            epoch=self.epoch,
            seq=self.seq,
            upserts={row["key"]: row for row in rows},
            removed=list(removed),
            server_time=now,
            live_at=now,
            health={"state": "live", "detail": ""},
            # A worker's first write of its epoch is a reset, as the publisher's is.
            reset=reset or self.seq == 1,
        )
        return protocol.delta_message(
            self.p.board.pk,
            epoch=self.epoch,
            seq=self.seq,
            server_time=now,
            live_at=now,
            health={"state": "live", "detail": ""},
            rows=list(rows),
            removed=list(removed),
        )

    async def push(self, rows=(), removed=(), *, reset=False) -> dict:
        message = await self.store_only(rows, removed, reset=reset)
        await self.send(message)
        return message

    async def send(self, message: dict) -> None:
        await self.layer.group_send(self.p.board.group_name, message)

    async def tick(self, seq: int | None = None, epoch: str | None = None) -> None:
        now = time.time()
        await self.send(
            protocol.tick_message(
                self.p.board.pk,
                epoch=epoch or self.epoch,
                seq=self.seq if seq is None else seq,
                server_time=now,
                live_at=now,
                health={"state": "live", "detail": ""},
            )
        )


async def open_socket(user, slug: str = "sales", query: str = "", app=None) -> WebsocketCommunicator:
    path = f"/ws/boards/{slug}/?" + "&".join(part for part in (query, ANNOUNCE) if part)
    communicator = WebsocketCommunicator(app or URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect(timeout=scaled(3))
    assert connected
    return communicator


async def receive(communicator: WebsocketCommunicator) -> Frame:
    return parse(await communicator.receive_from(timeout=scaled(3)))


async def nothing_more(communicator: WebsocketCommunicator) -> bool:
    return await communicator.receive_nothing(timeout=scaled(0.2))


# -- order ------------------------------------------------------------------------------


async def signed_in_socket(user, slug: str = "sales") -> tuple[Client, WebsocketCommunicator]:
    """Sign USER in with a real session and open the site's socket (origin, cookie, session) with its cookie."""
    from dashboard_project.asgi import application

    client = Client()
    await sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    ws = WebsocketCommunicator(
        application,
        f"/ws/boards/{slug}/?{ANNOUNCE}",
        headers=[(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", cookie)],
    )
    connected, _ = await ws.connect(timeout=scaled(3))
    assert connected
    return client, ws
