"""NICE CXone: the Real-Time Data API, polled, fitted to the shared loop.

CXone has no push stream for supervisors: live data is polled with
``updatedSince`` from ``/agents/states``, ``/skills/activity`` and
``/contacts/active``, each call passing the previous reply's
``lastPollTime`` so that only what changed comes back (304: nothing did).
How that rides the shared loop (``streams.link``):

- ``open_link()`` signs in (password grant with the access key), discovers
  the tenant's API host and returns a poll-driven link: one socket whose
  wire is the shared ``Poller`` (``streams.link.polling``), yielding poll
  results as frames.
- ``snapshot()`` polls all three in full (``updatedSince`` = the epoch) and
  sets the cursors incremental polling continues from; ``handle()`` turns a
  poll result into events. The loop takes the snapshot in the poller's
  turn: a poll in flight is handled first, and the next one waits for the
  snapshot, so no poll result can land after a newer snapshot.
- ``liveness = SelfReported()``: a poller has nothing to ping; the wire is
  alive as long as it polls, and fails the link itself only when it must
  (refused credentials). Throttling (429), 503 and other poll failures (the
  shared ``classify`` says "retry") do not drop the link or force a resync:
  the poller waits (Retry-After, else a short backoff), a circuit breaker
  stops calling a struggling tenant for a growing cooling period, the board
  shows the link as degraded meanwhile, and polling resumes from the last
  good ``lastPollTime`` (``poller.py``).
- ``default_timing``: the loop's defaults, except that a 429 without Retry-After
  waits at least 5 s (``default_retry_after``: NICE's own polling period).
  Before the breaker opens, a failed poll is retried after Retry-After or
  the jittered backoff (``backoff_min`` growing to ``backoff_cap``); the
  breaker opens after three failures in a row and cools off for a third of
  ``backoff_cap`` at first (20 s by default), doubling per failed probe up
  to ``max_retry_after``. An admin's ``backoff_cap`` scales both.

Mapping (see ``parsers.py`` for the tables): skills are queues (the
watched skill ids, as strings); agents are agents; active contacts are
interactions, with their campaign and disposition. CXone's real-time API
does not say which skills an agent holds, so every agent of the tenant is
given *all* the watched skills: an agent shows on every board that shows one
of the connection's skills. Contacts of unwatched skills are dropped
(counted as ``unwatched``). An incremental poll need not mention a contact
that ended, so every ``full_contacts_every`` seconds the contacts are polled
in full, and a live contact missing from two such complete lists in a row
ends (``contacts.py``, which says why one list is not enough).

A cursor moves on only when its list was read whole (every page, nothing
skipped); otherwise the next poll asks again from the previous poll time,
which returns a superset.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

from streams.events import AgentStatus, InteractionUpdate, QueueStats, SourceSnapshot
from streams.link.connector import Connector
from streams.link.failures import AuthFailed, LinkLost, Verdict, classify
from streams.link.liveness import SelfReported
from streams.link.polling import Poller
from streams.link.sockets import Link, Socket
from streams.link.timing import Timing
from streams.vendors.cxone.auth import CxoneAuth
from streams.vendors.cxone.contacts import LiveContacts
from streams.vendors.cxone.parsers import agent_status, contact_update, skill_stats
from streams.vendors.cxone.poller import Pacing, PollResult
from streams.vendors.cxone.rest import EPOCH, CxoneError, CxoneRest, Fetched
from streams.vendors.cxone.values import ParseError, api_version
from streams.vendors.spec import ConnectionSpec

log = logging.getLogger(__name__)

# Endpoint → (path under the API base, the reply's list).
ENDPOINTS = {
    "agents": ("/agents/states", "agentStates"),
    "skills": ("/skills/activity", "skillActivity"),
    "contacts": ("/contacts/active", "activeContacts"),
}
MIN_POLL_INTERVAL = 1.0  # never poll faster than this, whatever the admin says
PAGE_SIZE = 1000
FULL_CONTACTS_EVERY = 60.0


def api_base(api_endpoint: str, version: str) -> str:
    """Return the real-time API's base URL for a tenant's API endpoint and an API version.

    The version is written as CXone's paths want it (``31`` and ``v31`` are
    ``v31.0``); one that is no version at all raises ``CxoneError``.
    """
    try:
        version = api_version(version)
    except ParseError as exc:
        raise CxoneError(f"the connection's API version is unusable: {exc}") from None
    return f"{api_endpoint.rstrip('/')}/inContactAPI/services/{version}"


class CxoneConnector(Connector):
    """Poll one CXone tenant's skills, agents and contacts."""

    kind = "cxone"
    liveness = SelfReported()
    default_timing = Timing(default_retry_after=5.0)

    def __init__(
        self,
        *args: Any,
        page_size: int = PAGE_SIZE,
        full_contacts_every: float = FULL_CONTACTS_EVERY,
        min_poll_interval: float = MIN_POLL_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.page_size = page_size
        self.full_contacts_every = full_contacts_every
        self.min_poll_interval = min_poll_interval
        self.auth: CxoneAuth | None = None
        self.rest: CxoneRest | None = None
        self.cursors: dict[str, str] = {}  # endpoint → the lastPollTime to continue from
        self._ready = asyncio.Event()
        self._next_poll_at = 0.0  # monotonic
        self._full_contacts_at = 0.0  # monotonic
        self.contacts = LiveContacts(self.spec.source, self.health, self.emit)
        self.pacing = Pacing(self, timing=self.timing, health=self.health, set_state=self.set_state)
        self.breaker = self.pacing.breaker
        self.polls = 0  # poll steps that fetched something

    @property
    def interval(self) -> float:
        """Return the polling period: the admin's, never under the minimum."""
        return max(float(self.spec.settings.poll_interval or 0.0), self.min_poll_interval)

    # -- resources -----------------------------------------------------------------------

    async def start(self) -> None:
        """Create the HTTP session and the sign-in."""
        self.auth = auth_for(
            self.spec,
            self.open_session(),
            self.timing,
            cache=self.token_cache,
            on_refresh=self.token_refreshed,
        )

    def _api(self) -> CxoneRest:
        if self.rest is None:
            raise LinkLost("not signed in")
        return self.rest

    # -- the link ------------------------------------------------------------------------

    async def open_link(self) -> Link:
        """Sign in, find the tenant's API, and return a link whose one socket polls it."""
        if self.auth is None or self.session is None:
            raise RuntimeError("the connector is not running")
        endpoint = await self.auth.discover()
        self.rest = CxoneRest(
            api_base(endpoint, self.spec.settings.api_version),
            self.auth,
            self.session,
            timeout=self.timing.rest_timeout,
        )
        # Until a snapshot sets the cursors, the poller waits.
        self._ready.clear()
        self.cursors = {}
        return Link(sockets=[Socket(Poller(self._poll_step, self._ready), name="cxone-poller", expires_at=None)])

    # -- polling -------------------------------------------------------------------------

    async def _poll_step(self) -> tuple[PollResult | None, float]:
        """Poll the three calls incrementally if due; return the result and when to come back.

        The poller runs it in its turn: no snapshot runs meanwhile (one that ran while this step
        waited for its turn counts as this period's poll, and set the next poll time).
        """
        started = time.monotonic()
        if started < self._next_poll_at:
            return None, self._next_poll_at - started
        result = PollResult()
        full_contacts = started >= self._full_contacts_at
        try:
            for name, (path, root) in ENDPOINTS.items():
                full = name == "contacts" and full_contacts
                since = EPOCH if full else self.cursors.get(name, EPOCH)
                result.fetched[name] = await self._api().fetch(path, root, since, top=self.page_size)
                result.full_contacts = result.full_contacts or full
        except Exception as exc:
            verdict = classify(exc)
            if verdict is Verdict.WAIT_FOR_CREDENTIALS:
                # The loop treats this as an auth failure at once (a long wait; the admin must act).
                raise AuthFailed(f"CXone refused the poller ({exc})") from None
            if verdict is Verdict.FATAL or isinstance(exc, LinkLost):
                raise
            delay = self.pacing.failed(exc)
            self._next_poll_at = time.monotonic() + delay
            return (result if result.fetched else None), delay
        self.pacing.succeeded()
        self.polls += 1
        if full_contacts:
            self._full_contacts_at = started + self.full_contacts_every
        self._next_poll_at = started + self.interval
        return result, max(self._next_poll_at - time.monotonic(), 0.0)

    # -- frames --------------------------------------------------------------------------

    def handle(self, socket: Socket, frame: Any) -> None:
        """Turn one poll result into events and move the cursors on."""
        if not isinstance(frame, PollResult):
            self.health.count("malformed")
            return
        for name, fetched in frame.fetched.items():
            self._move_cursor(name, fetched)
        watched = frozenset(self.spec.queue_ids)
        if (agents := frame.fetched.get("agents")) is not None:
            for status in self._agents(agents, watched):
                self.emit(status)
        if (skills := frame.fetched.get("skills")) is not None:
            for stats in self._skills(skills, watched):
                self.emit(stats)
        contacts = frame.fetched.get("contacts")
        if contacts is not None and self.contacts.take(contacts, watched, full=frame.full_contacts):
            # Confirm the suspects at the next poll rather than a whole full_contacts_every later.
            self._full_contacts_at = 0.0

    def _move_cursor(self, name: str, fetched: Fetched) -> None:
        """Continue polling NAME from FETCHED's poll time, if the list was read whole; else from the old one."""
        if not fetched.complete:
            self.health.count("incomplete_list")
        elif fetched.may_have_skipped:
            self.health.count("list_shifted")
        if fetched.not_modified:
            return
        if fetched.last_poll_time is None:
            # No (readable) poll time to continue from: ask from the old one again (a superset).
            self.health.count("no_poll_time")
        elif fetched.whole:
            self.cursors[name] = fetched.last_poll_time
        # A list cut short or that may have skipped records: its poll time would pass over what it missed,
        # so the next poll asks from the old one again (a superset).

    def _agents(self, fetched: Fetched, watched: frozenset[str]) -> list[AgentStatus]:
        statuses = []
        for item in fetched.items:
            try:
                statuses.append(agent_status(self.spec.source, item, watched))
            except ParseError:
                self.health.count("malformed_record")
        return statuses

    def _skills(self, fetched: Fetched, watched: frozenset[str]) -> list[QueueStats]:
        stats = []
        for item in fetched.items:
            try:
                parsed = skill_stats(self.spec.source, item)
            except ParseError:
                self.health.count("malformed_record")
                continue
            if parsed.queue_id in watched:
                stats.append(parsed)
            else:
                self.health.count("unwatched")
        return stats

    # -- the snapshot --------------------------------------------------------------------

    async def snapshot(self) -> SourceSnapshot:
        """Poll all three calls in full and return the watched skills, every agent and the live contacts.

        The loop calls it in the poller's turn (``Link.in_turn``): no poll runs meanwhile.
        """
        wait = self.breaker.wait()
        if wait > 0:
            raise CxoneError(f"CXone is cooling off; next try in {wait:.0f} s", retry_after=wait)
        started = time.monotonic()
        fetched: dict[str, Fetched] = {}
        try:
            for name, (path, root) in ENDPOINTS.items():
                fetched[name] = await self._api().fetch(path, root, EPOCH, top=self.page_size)
                if not fetched[name].complete:
                    # The snapshot replaces the source's rows: a cut-short list would drop live ones.
                    raise CxoneError(f"the {name} list was cut short ({fetched[name].problem})")
        except Exception as exc:
            if classify(exc) is not Verdict.RETRY or isinstance(exc, LinkLost):
                raise
            delay = self.pacing.failed(exc)
            raise CxoneError(str(exc), getattr(exc, "status", None), retry_after=delay) from None
        self.pacing.succeeded()
        snapshot = self._build_snapshot(fetched)
        # A list that may have skipped a record sets no cursor: the next poll asks for it from the
        # epoch, which brings back whatever this snapshot missed.
        self.cursors = {n: f.last_poll_time for n, f in fetched.items() if f.whole and f.last_poll_time}
        self._full_contacts_at = started + self.full_contacts_every
        self._next_poll_at = started + self.interval
        self._ready.set()
        return snapshot

    def _build_snapshot(self, fetched: dict[str, Fetched]) -> SourceSnapshot:
        source, watched = self.spec.source, frozenset(self.spec.queue_ids)
        queues = {stats.queue_id: stats for stats in self._skills(fetched["skills"], watched)}
        for queue_id in watched - queues.keys():
            # Watched but not listed (deleted at CXone, or a typo): the row stays, empty, and it is counted.
            self.health.count("skill_not_found")
            queues[queue_id] = QueueStats(source=source, queue_id=queue_id)
        agents = {status.agent_id: status for status in self._agents(fetched["agents"], watched)}
        interactions: dict[str, InteractionUpdate] = {}
        for item in fetched["contacts"].items:
            try:
                update = contact_update(source, item)
            except ParseError:
                self.health.count("malformed_record")
                continue
            if update.ended is True:
                interactions.pop(update.interaction_id, None)
            elif update.queue_id in watched:
                interactions[update.interaction_id] = update
            else:
                self.health.count("unwatched")
        self.contacts.reset(set(interactions))
        return SourceSnapshot(source=source, queues=queues, agents=agents, interactions=interactions)

    async def apply_update(self, old: ConnectionSpec, new: ConnectionSpec) -> None:
        """Nothing to resubscribe: the resync that follows polls the new set of skills in full."""
        return


def auth_for(spec: ConnectionSpec, session: aiohttp.ClientSession, timing: Timing, **options: Any) -> CxoneAuth:
    """Return the sign-in of SPEC's application and access key over SESSION (OPTIONS: cache, on_refresh)."""
    return CxoneAuth(
        spec.settings.login_base,
        spec.settings.client_id,
        spec.settings.client_secret,
        spec.settings.access_key_id,
        spec.settings.access_key_secret,
        session=session,
        timeout=timing.rest_timeout,
        **options,
    )
