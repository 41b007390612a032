"""Which CXone contacts are on the board, and when one that no list mentions any more has ended.

An incremental poll need not mention a contact that ended, so the contacts
are polled in full now and then; a live contact missing from two complete
full lists in a row ends (``LiveContacts.missing_from`` says why one list is
not enough).
"""

from __future__ import annotations

from collections.abc import Callable

from streams.events import InteractionUpdate
from streams.health import LinkHealth
from streams.vendors.cxone.parsers import contact_id, contact_update
from streams.vendors.cxone.rest import Fetched
from streams.vendors.cxone.values import ParseError


class LiveContacts:
    """The contacts shown for one source, and those the last complete full list lacked."""

    def __init__(self, source: str, health: LinkHealth, emit: Callable[[InteractionUpdate], None]) -> None:
        self.source = source
        self.health = health
        self.emit = emit
        self.live: set[str] = set()
        self.suspects: set[str] = set()  # live contacts the last complete full list did not hold

    def reset(self, live: set[str]) -> None:
        """Start over from a snapshot's LIVE contacts."""
        self.live = set(live)
        self.suspects = set()

    def take(self, fetched: Fetched, watched: frozenset[str], *, full: bool) -> bool:
        """Emit contact changes; with FULL (and a complete list), end the live contacts it keeps missing.

        Return whether some live contacts are suspected gone: the next poll should list the contacts in full.
        """
        listed: set[str] = set()
        malformed = 0
        for item in fetched.items:
            # The id first: a record whose other fields are unusable still says its contact is there, so
            # that contact is not ended on this list's word. A record without a usable id names no contact
            # the board could hold: it is counted, and does not stop others from ending (one persistently
            # broken record must not keep every ended contact on the board for good).
            try:
                listed_id = contact_id(item)
            except ParseError:
                malformed += 1
                continue
            listed.add(listed_id)
            try:
                update = contact_update(self.source, item)
            except ParseError:
                malformed += 1
                continue
            if update.ended is True:
                self.end(listed_id)
            elif update.queue_id not in watched:
                self.health.count("unwatched")
                # Moved to a skill nobody watches here: it leaves the board.
                self.end(listed_id)
            else:
                self.live.add(listed_id)
                self.emit(update)
        if malformed:
            self.health.count("malformed_record", malformed)
        self.suspects -= listed
        if full and fetched.complete:
            return self.missing_from(listed)
        return False

    def missing_from(self, listed: set[str]) -> bool:
        """End the live contacts that this complete full list and the one before both lack.

        Return whether others are now suspected (lacking from this list only).

        One list is not enough. ``skip`` paging counts from the start of the
        list as it is when each page is asked for: a contact that leaves an
        earlier page meanwhile shifts the next unread record out of reach, and
        ``totalRecords`` cannot always tell (one contact leaving and another
        arriving between two pages keeps the count). A record skipped that way
        sits on a page boundary by chance; the next full list is read an
        interval later, when the boundaries fall elsewhere, so a contact both
        lists lack has really gone. Lists that shrank while paged (which may
        have skipped a record) still count: refusing them would stop ending
        contacts altogether on a busy tenant whose lists span pages. Should a
        live contact ever be ended wrongly, its next change or the next full
        list brings it back.
        """
        missing = self.live - listed
        confirmed = missing & self.suspects
        for missing_id in sorted(confirmed):
            self.end(missing_id)
        self.suspects = missing - confirmed
        return bool(self.suspects)

    def end(self, contact_id: str) -> None:
        """End CONTACT_ID on the board, if it is there."""
        self.suspects.discard(contact_id)
        if contact_id in self.live:
            self.live.discard(contact_id)
            self.emit(InteractionUpdate(source=self.source, interaction_id=contact_id, ended=True))
