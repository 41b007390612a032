"""Access that ends closes the sockets it opened, in every web process.

A board socket is authorised when it opens. When access is taken away later
(the user leaves the board's groups, is deactivated, deleted or signed out;
the board is deleted or its groups change; a group is deleted), the process
that made the change announces it on the channel layer's ``access`` group
(see dashboard.access_signals), and every web process re-checks only the
viewers the change can affect and closes those no longer allowed: 4401 when
the user or the session is gone, 4404 when the board is, 4403 otherwise.

Each process joins the group once, as it joins a board's group once (see
dashboard.fanout), so steady state costs nothing per viewer; a re-check costs
a few queries for all the affected viewers together. Changes that send no
signal (raw SQL, an expired session, a lost announcement while the layer was
away) are caught by a safety net: every process re-checks all its viewers
every ``FLOORVIEW_ACCESS_RECHECK`` seconds, with jitter so that processes
do not query together.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import weakref
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Protocol

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.utils.crypto import constant_time_compare

from dashboard.group_subscription import GroupSubscription
from dashboard.protocol import ACCESS_CHANGED, ACCESS_GROUP, Close

log = logging.getLogger(__name__)


def session_tag(session_key: str) -> str:
    """Return a tag naming a session in announcements: a session key is a credential and never travels."""
    return hashlib.sha256(f"floorview-access:{session_key}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Grant:
    """What one open socket was authorised with."""

    user_id: int
    board_id: int
    session_key: str | None = None  # None: the socket's scope had no session (tests, custom stacks)
    auth_hash: str | None = None  # the session's copy of the user's auth hash (a password change ends it)

    @property
    def session(self) -> str | None:
        """Return the tag of the grant's session."""
        return session_tag(self.session_key) if self.session_key else None


class Holder(Protocol):
    """What the watch needs from a viewer."""

    grant: Grant | None

    async def revoke(self, code: int) -> None:
        """Stop streaming and close the socket with CODE."""


def _sessions_alive(keys: set[str]) -> set[str]:
    engine = settings.SESSION_ENGINE
    if engine in ("django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"):
        from django.contrib.sessions.models import Session
        from django.utils import timezone

        # One query for all of them, however many viewers.
        alive = Session.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
        return set(alive.values_list("session_key", flat=True))
    if engine == "django.contrib.sessions.backends.signed_cookies":
        return set(keys)  # Held by the browser alone: the server cannot end one, so none is "gone" here.
    store = import_module(engine).SessionStore
    return {key for key in keys if store().exists(key)}


def _session_auth_hash(key: str) -> str | None:
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return store(session_key=key).get(HASH_SESSION_KEY)


def verdicts(grants: list[Grant]) -> dict[Grant, int]:
    """Return the close code of every grant in GRANTS that no longer holds (a few queries for all of them)."""
    from dashboard.models import Board, viewing_allowed

    user_model = get_user_model()
    user_ids = {g.user_id for g in grants}
    board_ids = {g.board_id for g in grants}
    users = {u.pk: u for u in user_model.objects.filter(pk__in=user_ids)}
    user_groups: dict[int, set[int]] = {}
    for user_id, group_id in user_model.groups.through.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "group_id"
    ):
        user_groups.setdefault(user_id, set()).add(group_id)
    boards = set(Board.objects.filter(pk__in=board_ids).values_list("pk", flat=True))
    board_groups: dict[int, set[int]] = {}
    for board_id, group_id in Board.groups.through.objects.filter(board_id__in=board_ids).values_list(
        "board_id", "group_id"
    ):
        board_groups.setdefault(board_id, set()).add(group_id)
    keys = {g.session_key for g in grants if g.session_key}
    alive = _sessions_alive(keys) if keys else set()

    closing: dict[Grant, int] = {}
    for grant in grants:
        user = users.get(grant.user_id)
        if user is None or not user.is_active or not _session_holds(grant, user, alive):
            closing[grant] = Close.UNAUTHENTICATED
        elif grant.board_id not in boards:
            closing[grant] = Close.UNKNOWN_BOARD
        elif not viewing_allowed(
            user, lambda u=user, g=grant: bool(user_groups.get(u.pk, set()) & board_groups.get(g.board_id, set()))
        ):
            closing[grant] = Close.FORBIDDEN
    return closing


def _session_holds(grant: Grant, user: Any, alive: set[str]) -> bool:
    if not grant.session_key:
        return True  # A scope without a session (tests, custom stacks): the user checks alone decide.
    if grant.session_key not in alive:
        return False
    # As django.contrib.auth.get_user checks it: a changed password ends the sessions made with the old one.
    current = user.get_session_auth_hash()
    if grant.auth_hash and constant_time_compare(grant.auth_hash, current):
        return True
    # The session may have been updated since (update_session_auth_hash after the user's own change).
    stored = _session_auth_hash(grant.session_key)
    return bool(stored) and constant_time_compare(stored, current)


class AccessWatch:
    """Hear access announcements in this process and close the viewers they revoke; re-check all now and then."""

    def __init__(self, layer: Any, *, on_empty: Any, period: float) -> None:
        self.layer = layer
        self.period = period
        self.viewers: dict[Holder, None] = {}
        self.checks = 0  # re-checks done (for tests and operators)
        # Announcements handled and rejoins so far: a grant read while the watch listened, with nothing heard
        # since, cannot have been revoked unseen, and needs no second check (mark, heard_nothing_since).
        self.heard = 0
        self.stopped = False
        self._on_empty = on_empty
        self._sweeping = asyncio.get_running_loop().create_task(self._sweep(), name="access sweep")
        # Without a channel layer the sweep alone enforces changes.
        self.subscription = (
            GroupSubscription(
                layer,
                ACCESS_GROUP,
                name="the access watch",
                on_message=self._announced,
                # Announcements sent while we were away are lost: check everyone once.
                on_rejoin=self._rejoined,
            )
            if layer is not None
            else None
        )

    def add(self, viewer: Holder) -> None:
        """Watch VIEWER's grant from now on."""
        self.viewers[viewer] = None

    async def listening(self, within: float) -> bool:
        """Wait up to WITHIN seconds for the watch to be in the access group; return whether it is.

        A new viewer's grant was checked before it was watched, and a new watch joins the group in
        the background: an announcement sent in between reached no one. The viewer waits for this
        and then checks its grant once more, so no revocation can slip through that gap.
        """
        if self.subscription is None:
            return False  # No layer: only the periodic re-check enforces changes.
        try:
            await asyncio.wait_for(self.subscription.joined.wait(), within)
        except TimeoutError:
            return False
        return True

    def mark(self) -> int | None:
        """Return what the watch has heard so far if it listens now (else None), to compare after a grant read."""
        if self.stopped or self.subscription is None or not self.subscription.joined.is_set():
            return None
        return self.heard

    def heard_nothing_since(self, mark: int | None) -> bool:
        """Return whether the watch has listened throughout since MARK and heard no announcement or rejoin."""
        return mark is not None and self.mark() == mark

    def discard(self, viewer: Holder) -> None:
        """Stop watching VIEWER; the last one out ends the watch."""
        self.viewers.pop(viewer, None)
        if not self.viewers and not self.stopped:
            self.stopped = True
            self._sweeping.cancel()
            if self.subscription is not None:
                self.subscription.stop()
            self._on_empty(self)

    async def recheck(self, message: dict | None = None) -> int:
        """Re-check the viewers MESSAGE concerns (all of them without one); close the revoked; return how many."""
        held = [(v, v.grant) for v in list(self.viewers) if v.grant is not None and _concerns(message, v.grant)]
        if not held:
            return 0
        # A signed-out session is closed on the announcement's word: the process that signed it out may not
        # have flushed it from the store yet when this re-check would read it.
        ended = set((message or {}).get("sessions") or ())
        revoked = [(viewer, Close.UNAUTHENTICATED) for viewer, grant in held if grant.session in ended]
        held = [(viewer, grant) for viewer, grant in held if grant.session not in ended]
        if held:
            self.checks += 1
            closing = await database_sync_to_async(verdicts)(list({grant for _, grant in held}))
            revoked += [(viewer, closing[grant]) for viewer, grant in held if grant in closing]
        for viewer, code in revoked:
            try:
                await viewer.revoke(code)
            except Exception as error:
                log.warning("closing a revoked board socket failed: %s", error)
        if revoked:
            log.info("closed %d board sockets whose access ended", len(revoked))
        return len(revoked)

    async def _rejoined(self) -> None:
        self.heard += 1
        await self._recheck_safely(None)

    async def _announced(self, message: Any) -> None:
        self.heard += 1  # before any await: a viewer comparing marks meanwhile must see it
        # As Channels dispatches: a handler named after the type, for the one type this group carries.
        if isinstance(message, dict) and message.get("type") == ACCESS_CHANGED:
            await getattr(self, get_handler_name(message))(message)

    async def access_changed(self, message: dict) -> None:
        """Re-check the viewers an announcement concerns."""
        await self._recheck_safely(message)

    async def _sweep(self) -> None:
        while True:
            # Jittered, so that a fleet of processes started together does not query together.
            await asyncio.sleep(self.period * random.uniform(0.8, 1.2))
            await self._recheck_safely(None)

    async def _recheck_safely(self, message: dict | None) -> None:
        try:
            await self.recheck(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The database is away: the next announcement or sweep tries again.
            log.exception("re-checking board access failed")


def _concerns(message: dict | None, grant: Grant) -> bool:
    if message is None or message.get("everyone"):
        return True
    return (
        grant.board_id in (message.get("boards") or ())
        or grant.user_id in (message.get("users") or ())
        or (grant.session is not None and grant.session in (message.get("sessions") or ()))
    )


class AccessWatches:
    """The access watch of this process, one per event loop and channel layer."""

    def __init__(self) -> None:
        self._watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AccessWatch] = weakref.WeakKeyDictionary()

    def watch(self, viewer: Holder) -> AccessWatch:
        """Watch VIEWER's grant; return the watch (the caller discards the viewer from it when done)."""
        loop = asyncio.get_running_loop()
        try:
            layer = get_channel_layer()
        except Exception as error:
            log.warning("no channel layer for access announcements (%s); the periodic re-check still runs", error)
            layer = None
        watch = self._watches.get(loop)
        if watch is None or watch.layer is not layer or watch.stopped:
            watch = self._watches[loop] = AccessWatch(
                layer, on_empty=lambda done: self._forget(loop, done), period=settings.FLOORVIEW["ACCESS_RECHECK"]
            )
        watch.add(viewer)
        return watch

    def _forget(self, loop: asyncio.AbstractEventLoop, watch: AccessWatch) -> None:
        if self._watches.get(loop) is watch:
            del self._watches[loop]

    def mark(self) -> tuple[AccessWatch, int] | None:
        """Return the running loop's watch and its mark, if a watch listens now."""
        watch = self.current()
        mark = watch.mark() if watch is not None else None
        return (watch, mark) if mark is not None else None

    def current(self) -> AccessWatch | None:
        """Return the running loop's watch, if any."""
        return self._watches.get(asyncio.get_running_loop())


watches = AccessWatches()
