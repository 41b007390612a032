"""Reading CXone's replies: pages of the Real-Time Data API, and the records in them, as Floorview events.

Every function here takes whatever JSON arrived and either returns plain
values and events or raises ``ParseError`` (and nothing else): the connector
counts and skips what it cannot use. The mapping onto Floorview's vocabulary:

Agent states (``agentStateName``) → (presence, routing status):

=====================================================  ===========================
``Available``                                          ``on_queue`` / ``IDLE``
``InboundContact``, ``OutboundContact``,
``InboundConsult``, ``OutboundConsult``, ``Dialer``    ``on_queue`` / ``INTERACTING``
``Unavailable`` with ``isACW`` (after-contact work)    ``on_queue`` / ``INTERACTING``
``Unavailable`` with the code ``Refused``              ``on_queue`` / ``NOT_RESPONDING``
``Unavailable`` with another code (e.g. "Lunch")       the code, lower-cased / ``OFF_QUEUE``
``Unavailable`` without a code                         ``unavailable`` / ``OFF_QUEUE``
``LoggedIn`` (signed in, no state chosen yet)          ``available`` / ``OFF_QUEUE``
``LoggedOut``                                          ``offline`` / ``OFF_QUEUE``
=====================================================  ===========================

Skill activity → queue figures: waiting = ``queueCount``, longest waiting
since = ``earliestQueueTime``, interacting = ``agentsWorking`` (ringing or
talking: CXone's counts do not tell them apart), idle = ``agentsAvailable``,
on queue = ``agentsLoggedIn`` − ``agentsUnavailable``, service level =
``inSLA`` / (``inSLA`` + ``outSLA``). CXone's real-time figures have no
alerting count and no interval totals (offered, answered, abandoned): those
stay unset.

Contact states (``stateName``, else ``contactStateCategory``) → interaction
states: queued and pre-queue → ``waiting``; routing and ringing →
``alerting``; active → ``connected``; holding → ``held``; ACW → ``wrapup``;
dialing → ``dialing``; ``EndContact`` (and abandoned, disconnected) ends the
interaction. CXone's media type names become Floorview's (``Phone Call`` →
``voice``, digital channels → ``message``; others lower-cased).

Counts and times go through ``streams.sanity``: a count out of range
(``1e300``, negative, a string) or a time outside the sane window leaves its
field unset and is counted; the record's other fields still apply.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streams import sanity, states
from streams.events import UNSET, AgentStatus, InteractionUpdate, QueueStats

MAX_TEXT = 200  # longer names are cut: a board cell never needs more


class ParseError(ValueError):
    """A reply or record that cannot be used (wrong shape or type)."""


@dataclass(frozen=True)
class Page:
    """One page of a real-time call: its records, the poll time to continue from, the next page."""

    items: list[dict[str, Any]]
    last_poll_time: str | None
    next_link: str | None
    total: int | None


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: Any) -> float | None:
    """Return the epoch seconds of a CXone timestamp, or None for null/empty; raise ParseError otherwise."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise ParseError("a timestamp must be a string")
    # CXone writes up to seven fractional digits; Python reads six.
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError(f"not a timestamp: {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        seconds = moment.timestamp()
    except (OverflowError, ValueError, OSError):
        raise ParseError("timestamp out of range") from None
    return round(seconds * 1000) / 1000


def poll_time(value: Any) -> str | None:
    """Return a ``lastPollTime`` fit to send back as ``updatedSince`` (as the server wrote it), or None.

    None also for a value that is not a timestamp: the records beside it are
    still good, but polling must go on from the previous poll time.
    """
    try:
        seconds = parse_time(value)
    except ParseError:
        return None
    # A poll time ahead of ours, sent back as updatedSince, would hear of no change until CXone's clock
    # caught up with it (hours, or the year 5138): refused (counted ``bad_time``) past the same two minutes
    # as every other time, and the poll goes on from the previous one.
    if seconds is None or sanity.moment(seconds) is None:
        return None
    return value.strip()


def parse_page(body: Any, root: str) -> Page:
    """Return the page of records under ROOT in BODY, in today's shape or wrapped in ``resultSet``.

    A reply without the list at all is refused (ParseError): it is no answer
    to the call, and the poll time beside it must not be taken.
    """
    if not isinstance(body, dict):
        raise ParseError("the reply is not an object")
    inner = body.get("resultSet")
    data = inner if isinstance(inner, dict) else body
    if root not in data:
        raise ParseError(f"the reply holds no {root}")
    items = data[root]
    if items is None:
        # Present but null: an empty list, as some versions write it.
        items = []
    if not isinstance(items, list):
        raise ParseError(f"{root} is not a list")
    links = data.get("_links") if isinstance(data.get("_links"), dict) else body.get("_links")
    next_link = links.get("next") if isinstance(links, dict) else None
    if not isinstance(next_link, str) or not next_link.strip():
        next_link = None
    # A count like any other (10**30 would mark every poll as having skipped records): refused → unknown.
    total = sanity.count(data.get("totalRecords", body.get("totalRecords")))
    last = data.get("lastPollTime", body.get("lastPollTime"))
    return Page(
        items=[item for item in items if isinstance(item, dict)],
        last_poll_time=poll_time(last),
        next_link=next_link,
        total=total,
    )


def entity_id(value: Any, what: str = "id") -> str:
    """Return a CXone id (a positive number, or its text) as a string; raise ParseError otherwise."""
    if isinstance(value, bool):
        raise ParseError(f"{what} is not a number")
    # Ids are at most 20 digits, as in text below: 1e300 is no id, whatever is_integer() says.
    if isinstance(value, int) and 0 < value < 10**20:
        return str(value)
    if isinstance(value, float) and value.is_integer() and 0 < value < 2**53:
        return str(int(value))
    if isinstance(value, str):
        text = value.strip()
        # ASCII digits only: "¹" and "٣" are digits to str.isdigit() but no CXone id (and int() refuses "¹").
        if text.isascii() and text.isdigit() and len(text) <= 20 and int(text) > 0:
            return str(int(text))
    raise ParseError(f"{what} is missing or not a positive number")


def contact_id(item: Any) -> str:
    """Return the ``contactId`` of one ``activeContacts[]`` record, whatever its other fields hold."""
    if not isinstance(item, dict):
        raise ParseError("a contact is not an object")
    return entity_id(item.get("contactId"), "contactId")


def optional_id(value: Any) -> str | None:
    """Return an id, or None where CXone says "none" (null, 0, empty)."""
    if value is None or value == 0 or value == "" or value == "0":
        return None
    try:
        return entity_id(value)
    except ParseError:
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value[:MAX_TEXT] or None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)[:MAX_TEXT]
    return None


def _count(value: Any) -> Any:
    """Return a count (see ``streams.sanity``), or UNSET when the field is absent or not a count (counted)."""
    checked = sanity.count(value)
    return UNSET if checked is None else checked


def _time_or_unset(value: Any) -> Any:
    """Return a time field as epoch seconds (None for null), or UNSET when unreadable or not sane (counted)."""
    return sanity.shown_time(value, parse_time)


def full_name(first: Any, last: Any) -> str | None:
    """Return "first last" from CXone's name fields, or None when both are empty."""
    parts = [p for p in (_text(first), _text(last)) if p]
    return " ".join(parts)[:MAX_TEXT] if parts else None


# -- skills ------------------------------------------------------------------------------

# Queue figures skill_stats never fills: the real-time API has no ringing count and no interval
# totals (those live in historical reports). Boards show "–" there rather than a zero that reads as fact.
UNREPORTED_QUEUE_FIELDS = frozenset({"alerting", "offered", "answered", "abandoned"})


def skill_stats(source: str, item: Any) -> QueueStats:
    """Return the QueueStats of one ``skillActivity[]`` record (fields it lacks stay UNSET)."""
    if not isinstance(item, dict):
        raise ParseError("a skill is not an object")
    skill_id = entity_id(item.get("skillId"), "skillId")
    values: dict[str, Any] = {}
    name = _text(item.get("skillName"))
    if name is not None:
        values["name"] = name
    values["waiting"] = _count(item.get("queueCount"))
    if "earliestQueueTime" in item:
        values["longest_waiting_since"] = _time_or_unset(item.get("earliestQueueTime"))
    values["interacting"] = _count(item.get("agentsWorking"))
    values["idle_agents"] = _count(item.get("agentsAvailable"))
    logged_in, unavailable = _count(item.get("agentsLoggedIn")), _count(item.get("agentsUnavailable"))
    if UNSET not in (logged_in, unavailable):
        # On queue: signed in and not unavailable, i.e. available, working or in after-contact work
        # (which Floorview counts as interacting).
        values["on_queue_agents"] = max(logged_in - unavailable, 0)
    in_sla, out_sla = _count(item.get("inSLA")), _count(item.get("outSLA"))
    if UNSET not in (in_sla, out_sla):
        values["sl_numerator"] = in_sla
        values["sl_denominator"] = in_sla + out_sla
    return QueueStats(source=source, queue_id=skill_id, **{k: v for k, v in values.items() if v is not UNSET})


def skill_entry(item: Any) -> dict[str, str]:
    """Return {"id", "name"} of one skill, for the admin's queue import."""
    if not isinstance(item, dict):
        raise ParseError("a skill is not an object")
    skill_id = entity_id(item.get("skillId"), "skillId")
    return {"id": skill_id, "name": _text(item.get("skillName")) or skill_id}


# -- agents ------------------------------------------------------------------------------

_WORKING_STATES = frozenset({"inboundcontact", "outboundcontact", "inboundconsult", "outboundconsult", "dialer"})


def agent_presence(item: dict[str, Any]) -> tuple[str, str]:
    """Return (presence, routing status) of one agent state record (see the table above)."""
    state = _text(item.get("agentStateName"))
    if state is None:
        raise ParseError("agentStateName is missing")
    folded = state.replace(" ", "").lower()
    reason = _text(item.get("outStateDescription"))
    if folded == "available":
        return "on_queue", "IDLE"
    if folded in _WORKING_STATES:
        return "on_queue", "INTERACTING"
    if folded == "unavailable":
        if item.get("isACW") is True:
            return "on_queue", "INTERACTING"
        if reason is None:
            return "unavailable", "OFF_QUEUE"
        if reason.lower() == "refused":
            return "on_queue", "NOT_RESPONDING"
        return states.presence(reason), "OFF_QUEUE"
    if folded == "loggedin":
        return "available", "OFF_QUEUE"
    if folded == "loggedout":
        return "offline", "OFF_QUEUE"
    # A state this table does not know is shown as CXone names it; routing cannot be told.
    return states.presence(state), "OFF_QUEUE"


def agent_status(source: str, item: Any, queue_ids: frozenset[str]) -> AgentStatus:
    """Return the AgentStatus of one ``agentStates[]`` record, a member of QUEUE_IDS."""
    if not isinstance(item, dict):
        raise ParseError("an agent state is not an object")
    agent_id = entity_id(item.get("agentId"), "agentId")
    presence, routing = agent_presence(item)
    since = _time_or_unset(item.get("startDate"))
    values: dict[str, Any] = {"presence": presence, "routing_status": routing, "queue_ids": queue_ids}
    name = full_name(item.get("firstName"), item.get("lastName"))
    if name is not None:
        values["name"] = name
    if since is not UNSET:
        # CXone has one start for the state it reports: it stands for both.
        values["presence_since"] = values["routing_since"] = since
    return AgentStatus(source=source, agent_id=agent_id, **values)


# -- contacts ----------------------------------------------------------------------------

CONTACT_STATES = {
    "prequeue": "waiting",
    "inqueue": "waiting",
    "queued": "waiting",
    "callback": "waiting",
    "routing": "alerting",
    "ringing": "alerting",
    "incoming": "alerting",
    "active": "connected",
    "conference": "connected",
    "conferenced": "connected",
    "holding": "held",
    "hold": "held",
    "parked": "held",
    "acw": "wrapup",
    "wrapup": "wrapup",
    "aftercontactwork": "wrapup",
    "dialing": "dialing",
    "dialer": "dialing",
    "endcontact": "ended",
    "ended": "ended",
    "abandoned": "ended",
    "disconnected": "ended",
    "released": "ended",
}
CONTACT_CATEGORIES = {
    "inqueue": "waiting",
    "queued": "waiting",
    "inivr": "waiting",
    "withagent": "connected",
    "ended": "ended",
}
MEDIA_NAMES = {
    "phonecall": "voice",
    "call": "voice",
    "voice": "voice",
    "voicemail": "voicemail",
    "chat": "chat",
    "email": "email",
    "e-mail": "email",
    "sms": "message",
    "digital": "message",
    "social": "message",
    "workitem": "workitem",
}


def contact_state(item: dict[str, Any]) -> str | None:
    """Return the Floorview state of one contact record (``ended`` when it is over), or None if unknown."""
    name = _text(item.get("stateName"))
    if name is not None:
        mapped = CONTACT_STATES.get(name.replace(" ", "").lower())
        if mapped is not None:
            return mapped
    category = _text(item.get("contactStateCategory"))
    if category is not None:
        mapped = CONTACT_CATEGORIES.get(category.replace(" ", "").lower())
        if mapped is not None:
            return mapped
    # An unknown state is shown as CXone names it.
    return name.lower() if name is not None else None


def media_name(value: Any) -> str | None:
    """Return Floorview's name for a CXone media type name."""
    text = _text(value)
    if text is None:
        return None
    return MEDIA_NAMES.get(text.replace(" ", "").lower(), text.lower())


def contact_update(source: str, item: Any) -> InteractionUpdate:
    """Return the InteractionUpdate of one ``activeContacts[]`` record (``ended=True`` once it is over).

    A record states the whole contact, so a field it lacks (no agent yet, no
    disposition chosen) is reported as None, not left as it was.
    """
    interaction_id = contact_id(item)
    state = contact_state(item)
    if state == "ended":
        return InteractionUpdate(source=source, interaction_id=interaction_id, ended=True)
    agent_id = optional_id(item.get("agentId"))
    return InteractionUpdate(
        source=source,
        interaction_id=interaction_id,
        media=media_name(item.get("mediaTypeName")),
        queue_id=optional_id(item.get("skillId")),
        state=state,
        agent_id=agent_id,
        agent_name=full_name(item.get("firstName"), item.get("lastName")) if agent_id else None,
        campaign=_text(item.get("campaignName")),
        disposition=_text(item.get("dispositionName")),
        started_at=_time_or_unset(item.get("startDate")),
    )


# -- the API version ---------------------------------------------------------------------

_API_VERSION = re.compile(r"[vV]?([0-9]{1,3})(?:\.([0-9]{1,2}))?")
DEFAULT_API_VERSION = "v31.0"


def api_version(value: Any) -> str:
    """Return an admin's API version as CXone's paths spell it: ``31``, ``v31`` and ``31.0`` are ``v31.0``.

    Blank is the default (``v31.0``); anything else that is not a version
    number raises ParseError.
    """
    if value is None:
        return DEFAULT_API_VERSION
    if not isinstance(value, str):
        raise ParseError("the API version is not text")
    text = value.strip()
    if not text:
        return DEFAULT_API_VERSION
    match = _API_VERSION.fullmatch(text)
    if match is None:
        raise ParseError(f"not an API version (e.g. v31.0): {text[:20]!r}")
    major, minor = match.groups()
    return f"v{int(major)}.{int(minor or 0)}"


# -- the id_token ------------------------------------------------------------------------


def jwt_claims(token: Any) -> dict[str, Any]:
    """Return the claims of a JWT without checking its signature; raise ParseError if it is not one.

    Not checking is safe here: the token comes straight from the token
    endpoint, over TLS, in reply to our own credentials; nobody else handed it
    to us, and nothing is granted on its word (the API checks the access token).
    """
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 64_000:
        raise ParseError("the id_token is not a JWT")
    payload = token.split(".")[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise ParseError("the id_token's claims are not base64url JSON") from None
    if not isinstance(claims, dict):
        raise ParseError("the id_token's claims are not an object")
    return claims
