"""The row kinds of a board (queue, agent, interaction), each field declared once.

A ``RowSchema`` lists a kind's fields in column order. Each ``Field`` says:

- its **default** (what a row holds before anything is reported, and what a
  full snapshot resets it to unless ``keep_on_snapshot``);
- how the Floor **normalises** a reported value (``normalise``), so every
  vendor's value is held in one spelling (parsers have already checked the
  range: see ``streams.sanity``);
- its **scope**: ``LIVE`` (as it is now), ``INTERVAL`` (since the vendor's
  current interval began, reset by the vendor), ``ROLLING`` (over the last
  ``window`` seconds, counted by the Floor from the rises of the interval
  figure named by ``rise_of``) or ``DERIVED`` (computed from other fields
  when a row is made, never stored);
- whether events carry it (``in_event``) and the Floor holds it (``in_state``);
- how a queue figure reported per media type adds up to the queue's
  (``per_media``: ``SUM``, ``EARLIEST``, or "" for a figure not split by media);
- for a board column: its **label**, a longer **title** for the header, and
  its **format** (``count`` shows a number, "–" when the vendor never reports
  it; the other formats have cells of their own in
  ``dashboard.templatetags.board_columns``).

``streams.events`` builds its event classes from these schemas and
``streams.floor`` its state classes, and the Floor folds any event by the
schema; the queue table's header and cells are made from the columns. Adding
a queue figure is a line here plus the parser that reads it (docs/ARCHITECTURE.md,
"Adding a figure").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from streams import states

LIVE = "live"
INTERVAL = "interval"
ROLLING = "rolling"
DERIVED = "derived"

SUM = "sum"
EARLIEST = "earliest"

MAX_TEXT = 200  # characters kept of a free-text value from upstream (ids, names, campaign labels)


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a row kind: its default, normalisation, scope and how a board shows it."""

    name: str
    default: Any = None
    normalise: Callable[[Any], Any] | None = None
    scope: str = LIVE
    label: str = ""  # a board column's header; "" = no column of its own
    title: str = ""  # the header's longer words (shown on hover and read by screen readers)
    format: str = "count"
    window: float = 0.0  # ROLLING: seconds
    rise_of: str = ""  # ROLLING: the INTERVAL figure whose rises are counted
    per_media: str = ""  # SUM or EARLIEST: how per-media figures make the queue's (Genesys groups by media)
    keep_on_snapshot: bool = False  # a snapshot that leaves it out keeps the value (names)
    in_event: bool = True
    in_state: bool = True


@dataclass(frozen=True)
class RowSchema:
    """The fields of one row kind, in column order, and what follows from them."""

    kind: str
    identity: str  # the vendor id's field: queue_id, agent_id, interaction_id
    fields: tuple[Field, ...]

    @property
    def event_fields(self) -> tuple[Field, ...]:
        """Return the fields an event may report."""
        return tuple(f for f in self.fields if f.in_event)

    @property
    def state_fields(self) -> tuple[Field, ...]:
        """Return the fields the Floor holds for a row."""
        return tuple(f for f in self.fields if f.in_state)

    @property
    def columns(self) -> tuple[Field, ...]:
        """Return the fields a board shows as columns, in order (the row's name comes first, on its own)."""
        return tuple(f for f in self.fields if f.label)

    @property
    def rolling(self) -> tuple[Field, ...]:
        """Return the ROLLING fields (the Floor counts them from rises)."""
        return tuple(f for f in self.fields if f.scope == ROLLING)

    def per_media(self, how: str, scope: str | None = None) -> tuple[str, ...]:
        """Return the names of the fields whose per-media figures add up HOW (in SCOPE, if given)."""
        return tuple(f.name for f in self.fields if f.per_media == how and scope in (None, f.scope))

    def normalisers(self) -> dict[str, Callable[[Any], Any]]:
        """Return field name → normaliser, for the fields that have one."""
        return {f.name: f.normalise for f in self.fields if f.normalise is not None}

    def unreported(self, names: Iterable[str]) -> frozenset[str]:
        """Return NAMES (figures a vendor never reports) with the figures counted from them."""
        never = frozenset(names)
        return never | {f.name for f in self.rolling if f.rise_of in never}


# -- normalisers ------------------------------------------------------------------------


def text(value: Any) -> str | None:
    """Return VALUE as a short string, or None for None and ""."""
    if value is None:
        return None
    return str(value)[:MAX_TEXT] or None


# One string object per lower-cased value: str.lower() makes a new one every time, and the Floor keeps a
# state and a media per live interaction (two strings of ~45 bytes each, 9 MB at 100,000). Bounded: a feed
# spelling states freely cannot grow it past this.
_LOWERED: dict[str, str] = {}
_MAX_LOWERED = 1024


def lower_text(value: Any) -> str | None:
    """Return VALUE as a short lower-case string (states and media are compared as such)."""
    folded = text(value)
    if folded is None:
        return None
    lowered = folded.lower()
    shared = _LOWERED.get(lowered)
    if shared is not None:
        return shared
    if len(_LOWERED) < _MAX_LOWERED:
        _LOWERED[lowered] = lowered
    return lowered


def moment(value: Any) -> float | None:
    """Return VALUE as epoch seconds, or None when it is not a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def presence(value: Any) -> str | None:
    """Return a presence in the Floor's spelling (see ``streams.states``), None when there is none."""
    if value is None:
        return None
    try:
        return states.presence(str(value))
    except ValueError:
        return None


def routing_status(value: Any) -> str | None:
    """Return a routing status in the Floor's spelling (see ``streams.states``), None when there is none."""
    if value is None:
        return None
    try:
        return states.routing_status(str(value))
    except ValueError:
        return None


def queue_ids(value: Any) -> frozenset[str]:
    """Return the queue ids an agent belongs to as a frozenset."""
    return frozenset(value or ())


# -- the row kinds ------------------------------------------------------------------------

QUEUE = RowSchema(
    "queue",
    "queue_id",
    (
        Field("name", keep_on_snapshot=True),
        Field("waiting", 0, per_media=SUM, label="Waiting", format="waiting"),
        # Epoch seconds at which the longest-waiting contact started waiting; None if nobody waits.
        Field("longest_waiting_since", per_media=EARLIEST, label="Longest wait", format="wait_clock"),
        Field("interacting", 0, per_media=SUM, label="Interacting"),
        Field("alerting", 0, per_media=SUM, label="Alerting"),
        Field("on_queue_agents", 0, label="On queue"),
        Field("idle_agents", 0, label="Idle"),
        Field(
            "service_level",
            scope=DERIVED,
            label="Service level",
            title="Service level this interval (target)",
            format="service_level",
            in_event=False,
            in_state=False,
        ),
        # Aggregates of the vendor's current interval (Genesys: 30 minutes), which began at interval_start.
        Field("interval_start", scope=INTERVAL),
        Field("offered", 0, scope=INTERVAL, per_media=SUM, label="Offered"),
        Field("answered", 0, scope=INTERVAL, per_media=SUM, label="Answered"),
        Field("abandoned", 0, scope=INTERVAL, per_media=SUM, label="Abandoned"),
        Field(
            "abandoned_15m",
            0,
            scope=ROLLING,
            window=15 * 60.0,
            rise_of="abandoned",
            label="Abandoned 15 min",
            title="Abandoned in the last 15 minutes",
            in_event=False,
        ),
        Field("sl_numerator", 0, scope=INTERVAL, per_media=SUM),
        Field("sl_denominator", 0, scope=INTERVAL, per_media=SUM),
    ),
)

AGENT = RowSchema(
    "agent",
    "agent_id",
    (
        Field("name", keep_on_snapshot=True),
        # Presence as a system presence ("available", "on_queue", "break", ...; see streams.states).
        Field("presence", normalise=presence),
        Field("presence_since"),  # epoch seconds
        Field("routing_status", normalise=routing_status),  # one of states.ROUTING_STATUSES
        Field("routing_since"),  # epoch seconds
        Field("queue_ids", frozenset(), normalise=queue_ids),  # the queues the agent is a member of
    ),
)

INTERACTION = RowSchema(
    "interaction",
    "interaction_id",
    (
        Field("media", normalise=lower_text),  # "voice", "chat", "email", "message", ...
        Field("queue_id", normalise=text),  # the vendor's queue (CXone: skill) id, or None
        # waiting, alerting, connected, held, wrapup or dialing (dashboard.rows names them).
        Field("state", normalise=lower_text),
        Field("agent_id", normalise=text),
        Field("agent_name", normalise=text),
        Field("campaign", normalise=text),
        Field("disposition", normalise=text),
        Field("started_at", normalise=moment),  # epoch seconds
        Field("state_since", in_event=False),  # when ``state`` last changed, by the Floor's wall clock
        Field("ended", in_state=False),  # True: the interaction is over and its row goes
    ),
)
