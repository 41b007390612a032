"""What the generic feeds (push and SSE) share: tokens, record mapping, queue filtering, bad-input counting.

A ``MappedFeed`` turns records into ``InteractionUpdate``s through a
``RecordFolder`` built from the admin's field mapping, keeps only records of
watched queues (a record that names no queue is kept), and counts whatever it
drops by reason in the link's health. Bad frames are logged at most once a
minute, with a short sample that never holds a token.

Neither feed has a REST snapshot: ``snapshot()`` returns None, so the base
loop streams without a resync.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from streams.events import UNSET, AgentStatus, InteractionUpdate
from streams.feeds.mapping import MAX_TRACKED, RecordError, RecordFolder
from streams.health import LinkHealth, scrub
from streams.link.connector import Connector
from streams.link.failures import LinkLost
from streams.oauth import AuthFailed, TokenProvider
from streams.vendors.spec import ConnectionSpec

log = logging.getLogger(__name__)

T = TypeVar("T")

LOG_EVERY = 60.0  # seconds between two warnings about bad input from one feed
SAMPLE_CHARS = 60


class FeedRefused(LinkLost):
    """The feed answered the connection attempt with an HTTP error (``status``; ``retry_after`` in seconds)."""

    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"the feed answered {status}")
        self.status = status
        self.retry_after = retry_after


def sample_of(item: Any) -> str:
    """Return a short, secret-free description of a bad frame or piece of data for the logs."""
    if isinstance(item, bytes | bytearray | memoryview):
        data = bytes(item[:24])
        more = "…" if len(item) > 24 else ""
        return f"{len(item)} bytes: {data.hex(' ')}{more}"
    text = str(item)
    more = "…" if len(text) > SAMPLE_CHARS else ""
    # scrub() escapes control characters: a frame's newline cannot start a log line of its own.
    return f'{len(text)} chars: "{scrub(text[:SAMPLE_CHARS])}"{more}'


class BadInputLog:
    """Count dropped input by kind in the health counters; warn at most once every ``every`` seconds."""

    def __init__(
        self, owner: str, health: LinkHealth, *, every: float = LOG_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.owner = owner
        self.health = health
        self.every = every
        self._clock = clock
        self._window: Counter[str] = Counter()  # dropped since the last warning
        self._last_warning: float | None = None
        self.warnings = 0

    def note(self, kind: str, sample: Any) -> None:
        """Count one dropped item of KIND; SAMPLE (the frame, or a description) shows in a warning if one is due."""
        self.health.count(kind)
        self._window[kind] += 1
        now = self._clock()
        if self._last_warning is not None and now - self._last_warning < self.every:
            return
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self._window.items()))
        log.warning("%s: dropped bad input (%s); latest %s: %s", self.owner, counts, kind, sample_of(sample))
        self._window.clear()
        self._last_warning = now
        self.warnings += 1


class MappedFeed(Connector):
    """A feed of generic records: a bearer token, the field mapping, and filtering to the watched queues."""

    def __init__(self, spec: ConnectionSpec, *args: Any, **kwargs: Any) -> None:
        super().__init__(spec, *args, **kwargs)
        self.folder = RecordFolder(spec.source, spec.settings.mapping())
        self.bad = BadInputLog(repr(self), self.health)
        self.tokens: TokenProvider | None = None
        self._watched = frozenset(spec.queue_ids)
        # Interactions on the board (id → queue): an interaction moving to an unwatched queue, or a queue
        # no longer watched, takes its rows off the board. Bounded like the folder's memory.
        self._shown: OrderedDict[str, str | None] = OrderedDict()
        # Agent id → the name records last gave it: a feed's records are the only place its agents
        # are named (EventBridge activity, for one, carries no names), so the agent rows learn it here.
        self._agent_names: OrderedDict[str, str] = OrderedDict()

    # -- resources -----------------------------------------------------------------------

    async def start(self) -> None:
        """Create the HTTP session and, when a token URL is configured, the token provider."""
        self.open_session()
        if self.spec.settings.token_url:
            self.tokens = TokenProvider(
                "",
                self.spec.settings.client_id,
                self.spec.settings.client_secret,
                session=self.session,
                cache=self.token_cache,
                timeout=self.timing.rest_timeout,
                on_refresh=self.token_refreshed,
                token_url=self.spec.settings.token_url,
                scope=self.spec.settings.scope,
            )

    async def authorised(self, attempt: Callable[[dict[str, str]], Awaitable[T]]) -> T:
        """Return ATTEMPT(headers) with the bearer token in HEADERS; after a 401, once more with a new token.

        ATTEMPT raises ``FeedRefused`` for an HTTP error. A 401 answered to a token fetched just
        now (or to no token at all) is an auth failure: the admin has to act.
        """
        for _ in range(2):
            token, fresh = await self._bearer()
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            try:
                return await attempt(headers)
            except FeedRefused as exc:
                if exc.status != 401:
                    raise
                if token is None or self.tokens is None:
                    raise AuthFailed("the feed refused the connection (401) and no token URL is set") from None
                await self.tokens.invalidate(token)
                if fresh:
                    raise AuthFailed("the feed refused a token fetched just now (401)") from None
                log.info("%s: the feed refused the cached token; fetching a new one", self)
        raise AuthFailed("the feed refused a new token (401)")

    async def _bearer(self) -> tuple[str | None, bool]:
        """Return the token to send (None: no token URL) and whether it was fetched just now."""
        if self.tokens is None:
            return None, False
        before = self.tokens.fetched
        token = await self.tokens.token()
        # Fetched just now only if a fetch succeeded: a failed refresh hands out the older token,
        # and a 401 to that says nothing about the credentials.
        return token, self.tokens.fetched != before

    # -- records -------------------------------------------------------------------------

    async def snapshot(self) -> None:
        """Return None: a feed has no REST snapshot (its events flow without a resync)."""
        return None

    def take_records(self, records: list[Any]) -> None:
        """Map RECORDS and emit the updates of watched queues; count the rest by reason."""
        for record in records:
            try:
                folded = self.folder.fold(record)
            except RecordError as exc:
                if isinstance(record, dict) and self.folder.mapping.get(record, "interaction_id") in (UNSET, None, ""):
                    # Health checks and other non-interaction records: expected, not worth a warning.
                    self.health.count("no_interaction")
                else:
                    keys = sorted(str(k)[:20] for k in record)[:8] if isinstance(record, dict) else []
                    self.bad.note("bad_record", f"{exc} (fields {keys})")
                continue
            except Exception:
                # A record that trips a bug costs that record, never the rest of the batch.
                self.health.count("handler_error")
                log.exception("%s: a record could not be mapped; the batch goes on", self)
                continue
            if folded.event is None:
                self.health.count(folded.dropped or "dropped")
                continue
            self._route(folded.event)

    def _route(self, event: InteractionUpdate) -> None:
        interaction_id, queue_id = event.interaction_id, event.queue_id
        if isinstance(queue_id, str) and queue_id not in self._watched:
            self.health.count("unwatched")
            if self._shown.pop(interaction_id, UNSET) is not UNSET:
                # It moved to a queue nobody watches: its row leaves the board.
                self.emit(InteractionUpdate(source=event.source, interaction_id=interaction_id, ended=True))
            return
        self._learn_agent_name(event)
        if event.ended is True:
            self._shown.pop(interaction_id, None)
        else:
            known = self._shown.pop(interaction_id, None)
            self._shown[interaction_id] = queue_id if isinstance(queue_id, str) else known
            if len(self._shown) > MAX_TRACKED:
                self._shown.popitem(last=False)
        self.emit(event)

    def _learn_agent_name(self, event: InteractionUpdate) -> None:
        agent_id, name = event.agent_id, event.agent_name
        if not isinstance(agent_id, str) or not isinstance(name, str) or not agent_id or not name:
            return
        if self._agent_names.get(agent_id) == name:
            self._agent_names.move_to_end(agent_id)
            return
        self._agent_names[agent_id] = name
        self._agent_names.move_to_end(agent_id)
        if len(self._agent_names) > MAX_TRACKED:
            self._agent_names.popitem(last=False)
        # Only the name: an agent that no board's queue lists stays off every board.
        self.emit(AgentStatus(source=event.source, agent_id=agent_id, name=name))

    async def apply_update(self, old: ConnectionSpec, new: ConnectionSpec) -> None:
        """Take rows of queues no longer watched off the board, and reconnect for the new set.

        A feed cannot be told about the new queues' interactions on the live link: a new
        link (make-before-break) brings them, in the picture a feed states on connect.
        """
        self.drop_unwatched(new)
        self.request_rollover("watched queues changed")

    def drop_unwatched(self, new: ConnectionSpec) -> None:
        """Watch NEW's queues from now on, and end the rows of interactions in queues no longer watched."""
        self._watched = frozenset(new.queue_ids)
        for interaction_id, queue_id in list(self._shown.items()):
            if queue_id is not None and queue_id not in self._watched:
                del self._shown[interaction_id]
                self.emit(InteractionUpdate(source=new.source, interaction_id=interaction_id, ended=True))
