"""What the operator does to open notification sockets (warn, close, stall, send odd frames); what truth shows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from simulator.genesys.sockets import SocketSession, envelope
from simulator.timefmt import iso

if TYPE_CHECKING:
    from simulator.genesys.channels import Channel

SOCKET_CLOSING_DELAY = 60.0


class SocketControl:
    """Act on the hub's open sockets, one channel's or all of them, as the control endpoint's faults ask.

    A part of ``Hub``: it reads the hub's channels and keeps its pending closes.
    """

    channels: dict[str, Channel]
    _timers: set[asyncio.TimerHandle]

    def sessions(self, channel_id: str | None = None) -> list[SocketSession]:
        """Return the open sockets (of one channel, if given)."""
        chosen = [self.channels[channel_id]] if channel_id in self.channels else []
        if channel_id is None:
            chosen = list(self.channels.values())
        return [c.session for c in chosen if c.session is not None and not c.session.closing]

    def socket_closing(self, channel_id: str | None = None, delay: float = SOCKET_CLOSING_DELAY) -> int:
        """Warn sockets with ``v2.system.socket_closing`` and close them (1001) after DELAY; return how many."""
        sessions = self.sessions(channel_id)
        body = {"message": "This socket will be closed shortly; reconnect now.", "closeIn": int(delay)}
        text = envelope("v2.system.socket_closing", body)
        for session in sessions:
            session.send(text)
            self._close_later(session, max(0.0, delay))
        return len(sessions)

    def close_sockets(self, channel_id: str | None, code: int, message: str = "") -> int:
        """Close the open sockets (of one channel, if given) with CODE; return how many."""
        sessions = self.sessions(channel_id)
        for session in sessions:
            session.close(code, message)
        return len(sessions)

    def stall(self, channel_id: str | None, seconds: float | None) -> int:
        """Silence the open sockets (of one channel, if given) for SECONDS or until cleared; return how many."""
        sessions = self.sessions(channel_id)
        for session in sessions:
            session.stall(seconds)
        return len(sessions)

    def unstall_all(self) -> int:
        """End every stall; return how many sockets were stalled."""
        stalled = [s for s in self.sessions() if s.stalled()]
        for session in stalled:
            session.unstall()
        return len(stalled)

    def send_system(self, kind: str, channel_id: str | None) -> int:
        """Send ``v2.system.<KIND>.<channel id>`` on the open sockets (of one channel, if given)."""
        sessions = self.sessions(channel_id)
        for session in sessions:
            session.send(envelope(f"v2.system.{kind}.{session.channel.id}", {"channelId": session.channel.id}))
        return len(sessions)

    def send_text(self, channel_id: str | None, texts: Iterable[str]) -> int:
        """Send raw TEXTS (well-formed or not) on the open sockets (of one channel, if given)."""
        sessions = self.sessions(channel_id)
        texts = list(texts)
        for session in sessions:
            for text in texts:
                session.send(text)
        return len(sessions)

    def _close_later(self, session: SocketSession, delay: float) -> None:
        handles: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self._timers.discard(handles[0])
            session.close(1001, "socket closing")

        handles.append(asyncio.get_running_loop().call_later(delay, fire))
        self._timers.add(handles[0])

    def channels_truth(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Return the channels per client as ``/simulator/truth`` shows them."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for channel in self.channels.values():
            open_ = 1 if channel.session is not None and not channel.session.closing else 0
            out.setdefault(channel.client_id, {})[channel.id] = {
                "sockets_open": open_,
                "stalled": bool(open_ and channel.session.stalled()),
                "topics": len(channel.topics),
                "expires": iso(channel.expires),
            }
        return out

    def sockets_truth(self) -> dict[str, dict[str, Any]]:
        """Return, per client, how many notification sockets are open and on how many channels."""
        out: dict[str, dict[str, Any]] = {}
        for channel in self.channels.values():
            summary = out.setdefault(channel.client_id, {"channels": 0, "sockets_open": 0, "stalled": 0})
            summary["channels"] += 1
            session = channel.session
            if session is not None and not session.closing:
                summary["sockets_open"] += 1
                summary["stalled"] += session.stalled()
        return out

    def close_all(self, code: int = 1001, message: str = "server shutting down") -> None:
        """Close every socket and cancel pending closes."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for channel in self.channels.values():
            if channel.session is not None:
                channel.session.close(code, message)
