"""The model's clock: the heap of due events, stepping to a time, pausing and resuming.

Everything that will happen sits in a heap with its due time; ``step(now)``
runs every event due by ``now`` in time order, each at its own time, so the
same seed gives the same history however often the server ticks.
"""

from __future__ import annotations

import heapq
from typing import Any

from simulator.model.entities import IDLE, NOT_RESPONDING, OFF_QUEUE, Contact, SimAgent, SimQueue
from simulator.timefmt import interval_start, ms


class EventClock:
    """Run due events in time order; freeze and unfreeze without a catch-up burst.

    A part of ``ContactCentreModel``: the heap, the sequence numbers and the
    epochs are the model's attributes, and the events' handlers its other parts.
    """

    def step(self, now: float | None = None) -> int:
        """Run every event due by NOW (default: the clock); return how many ran. Paused: do nothing."""
        if self.paused:
            return 0
        now = ms(self.clock() if now is None else now)
        count = 0
        while self._heap and self._heap[0][0] <= now:
            due, _, kind, target, epoch, _ = heapq.heappop(self._heap)
            self._advance(due)
            if self._handle(kind, target, epoch):
                count += 1
        self._advance(now)
        self.events_processed += count
        self._flush()
        return count

    def pause(self, now: float | None = None) -> None:
        """Freeze the model: no state changes at all until ``resume``."""
        if self.paused:
            return
        self.step(now)
        self.paused = True
        self.paused_at = self.now

    def resume(self, now: float | None = None) -> None:
        """Unfreeze the model; what was due during the pause is postponed by its length (no catch-up burst)."""
        if not self.paused:
            return
        now = ms(self.clock() if now is None else now)
        paused_at = self.paused_at if self.paused_at is not None else now
        shifted = []
        for due, seq, kind, target, epoch, scheduled_at in self._heap:
            # An event scheduled during the pause (by an explicit action) is postponed only by the rest of it.
            gap = max(0.0, now - max(paused_at, scheduled_at))
            shifted.append((ms(due + gap), seq, kind, target, epoch, scheduled_at))
        heapq.heapify(shifted)
        self._heap = shifted
        self.paused = False
        self.paused_at = None
        self._advance(max(self.now, now))
        self._flush()

    def _advance(self, t: float) -> None:
        if t < self.now:
            return
        self.now = t
        start = interval_start(t)
        if start != self.interval_start:
            self.interval_start = start
            for queue in self.queues.values():
                queue.reset_interval(start)
                self._queue_changed(queue.id, observations=False, interval=True)

    def _at(self, now: float | None) -> float:
        """Bring the model to NOW for an explicit action and return the action's time."""
        if not self.paused:
            self.step(now)
            return self.now
        # Paused: the action happens at the wall time given, but nothing that was due runs.
        t = max(self.now, ms(self.clock() if now is None else now))
        self._advance(t)
        return t

    def _schedule(self, due: float, kind: str, target: Any, epoch: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (ms(due), self._seq, kind, target, epoch, self.now))

    def _handle(self, kind: str, target: Any, epoch: int) -> bool:
        """Run one due event; return False if it had gone stale."""
        t = self.now
        if kind == "arrival":
            if epoch != self._arrival_epoch:
                return False
            queue = self._pick_queue()
            if queue is not None:
                self._enter_queue(queue, t)
                self._dispatch(t, {queue.id})
            self._schedule_arrival(t)
            return True
        if kind == "presence":
            if epoch != target.presence_epoch:
                return False
            self._presence_timer(target, t)
            return True
        if kind == "recover":
            if epoch != target.epoch or target.routing_status != NOT_RESPONDING:
                return False
            self._set_routing(target, IDLE if target.presence == "on_queue" else OFF_QUEUE, t)
            self._dispatch(t, set(target.queue_ids))
            return True
        contact: Contact = target
        if kind == "abandon":
            # Patience runs from arrival and survives offers and take-backs: no epoch to check.
            if contact.state not in ("waiting", "alerting"):
                return False
            self._abandon(contact, t)
            return True
        if epoch != contact.epoch:
            return False
        handler = {
            "answer": self._answer,
            "alert_timeout": self._alert_timeout,
            "hangup": self._hangup,
            "acw_end": self._acw_end,
        }[kind]
        handler(contact, t)
        return True

    def _pick_queue(self) -> SimQueue | None:
        queues = list(self.queues.values())
        if not queues:
            return None
        return self.rng.choices(queues, weights=[q.weight for q in queues])[0]

    def _schedule_arrival(self, t: float) -> None:
        # A new epoch makes any arrival already in the heap stale (the rate changed).
        self._arrival_epoch += 1
        if self.config.rate > 0:
            self._schedule(t + self.rng.expovariate(self.config.rate), "arrival", None, self._arrival_epoch)

    def _schedule_presence(self, agent: SimAgent, t: float, delay: float | None = None) -> None:
        agent.presence_epoch += 1
        if delay is None:
            delay = self.rng.expovariate(1.0 / self.config.presence_change_mean)
        self._schedule(t + delay, "presence", agent, agent.presence_epoch)
