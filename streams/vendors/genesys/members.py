"""Who the joined members of a Genesys connection's watched queues are, kept current between snapshots.

The members REST call says who is in a queue; each queue's users topic says
who joins and leaves after that. Every member has its own topic subscribed,
so an agent who joins its first watched queue is a newcomer: at the next
``maintain`` its topic is subscribed, then its state read and emitted, in
that order, so that no change falls between the REST read and the topic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from streams.events import AgentStatus, QueueMembership
from streams.vendors.genesys.reads import with_queues
from streams.vendors.genesys.replies import Member


class Owner(Protocol):
    """What the members need of their connector: somewhere to emit, a wake-up, resyncs and the topics."""

    def emit(self, event: Any) -> None: ...

    def wake(self) -> None: ...

    def request_resync(self, reason: str) -> None: ...

    async def sync_topics(self) -> None: ...


class QueueMembers:
    """The agents who are joined members of each watched queue, as last seen, and the newcomers not yet welcomed.

    READ returns one queue's members over REST (none for a queue the vendor
    no longer has).
    """

    def __init__(self, owner: Owner, read: Callable[[str], Awaitable[list[Member]]]) -> None:
        self.owner = owner
        self._read = read
        # Watched queue → the agents who are joined members of it, as last seen.
        self.by_queue: dict[str, set[str]] = {}
        self.joiners: dict[str, set[str]] = {}  # agent → queues joined since the last maintain

    def agents(self) -> list[str]:
        """Return every member of a watched queue once, sorted (each has its topic subscribed)."""
        return sorted(set().union(*self.by_queue.values())) if self.by_queue else []

    async def load(self, queue_ids: Iterable[str]) -> None:
        """Learn who the members of QUEUE_IDS are, so their topics can be subscribed."""
        for queue_id in queue_ids:
            self.by_queue[queue_id] = {m.agent_id for m in await self._read(queue_id) if m.joined}

    def note(self, event: QueueMembership) -> bool:
        """Apply a join or leave from a queue's users topic; return False when the queue is not watched.

        A newcomer is kept for ``welcome`` (and the owner woken to run it); an
        agent who left every watched queue asks for a resync.
        """
        watched = self.by_queue
        agents = watched.get(event.queue_id)
        if agents is None:
            return False
        if event.joined and event.agent_id not in agents:
            known = any(event.agent_id in a for a in watched.values())
            agents.add(event.agent_id)
            if not known:
                # A new face: subscribe its topic and fetch its state (in maintain).
                self.joiners.setdefault(event.agent_id, set()).add(event.queue_id)
                self.owner.wake()
        elif not event.joined and event.agent_id in agents:
            agents.discard(event.agent_id)
            if not any(event.agent_id in a for a in watched.values()):
                # Only a snapshot removes a row: the agent left every watched queue.
                self.owner.request_resync("an agent left every watched queue")
        return True

    async def welcome(self) -> None:
        """Subscribe the agents who joined watched queues since the last call, then emit their full state.

        Subscribing comes first, so no change falls between the REST read and the topic.
        """
        joiners, self.joiners = self.joiners, {}
        for agent_id, queue_ids in joiners.items():
            for queue_id in queue_ids:
                # A snapshot taken meanwhile may have replaced the member sets without them.
                if queue_id in self.by_queue:
                    self.by_queue[queue_id].add(agent_id)
        await self.owner.sync_topics()
        found: dict[str, AgentStatus] = {}
        for queue_id in sorted(set().union(*joiners.values())):
            if queue_id not in self.by_queue:
                continue
            present = set()
            for member in await self._read(queue_id):
                if member.agent_id in joiners and member.joined:
                    found[member.agent_id] = member.status
                    present.add(member.agent_id)
            for agent_id in joiners:
                if queue_id in joiners[agent_id] and agent_id not in present:
                    # Gone again before we looked: a resync settles where it stands.
                    self.by_queue[queue_id].discard(agent_id)
                    self.owner.request_resync("a new member left again")
        for agent_id, status in found.items():
            queue_ids = frozenset(q for q, agents in self.by_queue.items() if agent_id in agents)
            self.owner.emit(with_queues(status, queue_ids))
