"""Reading CXone's replies: pages of the Real-Time Data API, and the records in them, as Floorview events.

Every function here takes whatever JSON arrived and either returns plain
values and events or raises ``ParseError`` (and nothing else): the connector
counts and skips what it cannot use. The values in a record (timestamps, ids,
names, counts) are read by ``values``; what they mean is said here, with the
mapping onto Floorview's vocabulary:

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

from dataclasses import dataclass
from typing import Any

from streams import sanity, states
from streams.events import UNSET, AgentStatus, InteractionUpdate, QueueStats
from streams.vendors.cxone.values import (
    ParseError,
    count_or_unset,
    entity_id,
    full_name,
    optional_id,
    parse_time,
    short_text,
    shown_time,
)

# -- pages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of a real-time call: its records, the poll time to continue from, the next page."""

    items: list[dict[str, Any]]
    last_poll_time: str | None
    next_link: str | None
    total: int | None


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
    name = short_text(item.get("skillName"))
    if name is not None:
        values["name"] = name
    values["waiting"] = count_or_unset(item.get("queueCount"))
    if "earliestQueueTime" in item:
        values["longest_waiting_since"] = shown_time(item.get("earliestQueueTime"))
    values["interacting"] = count_or_unset(item.get("agentsWorking"))
    values["idle_agents"] = count_or_unset(item.get("agentsAvailable"))
    logged_in, unavailable = count_or_unset(item.get("agentsLoggedIn")), count_or_unset(item.get("agentsUnavailable"))
    if UNSET not in (logged_in, unavailable):
        # On queue: signed in and not unavailable, i.e. available, working or in after-contact work
        # (which Floorview counts as interacting).
        values["on_queue_agents"] = max(logged_in - unavailable, 0)
    in_sla, out_sla = count_or_unset(item.get("inSLA")), count_or_unset(item.get("outSLA"))
    if UNSET not in (in_sla, out_sla):
        values["sl_numerator"] = in_sla
        values["sl_denominator"] = in_sla + out_sla
    return QueueStats(source=source, queue_id=skill_id, **{k: v for k, v in values.items() if v is not UNSET})


def skill_entry(item: Any) -> dict[str, str]:
    """Return {"id", "name"} of one skill, for the admin's queue import."""
    if not isinstance(item, dict):
        raise ParseError("a skill is not an object")
    skill_id = entity_id(item.get("skillId"), "skillId")
    return {"id": skill_id, "name": short_text(item.get("skillName")) or skill_id}


# -- agents ------------------------------------------------------------------------------

_WORKING_STATES = frozenset({"inboundcontact", "outboundcontact", "inboundconsult", "outboundconsult", "dialer"})


def agent_presence(item: dict[str, Any]) -> tuple[str, str]:
    """Return (presence, routing status) of one agent state record (see the table above)."""
    state = short_text(item.get("agentStateName"))
    if state is None:
        raise ParseError("agentStateName is missing")
    folded = state.replace(" ", "").lower()
    reason = short_text(item.get("outStateDescription"))
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
    since = shown_time(item.get("startDate"))
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
    name = short_text(item.get("stateName"))
    if name is not None:
        mapped = CONTACT_STATES.get(name.replace(" ", "").lower())
        if mapped is not None:
            return mapped
    category = short_text(item.get("contactStateCategory"))
    if category is not None:
        mapped = CONTACT_CATEGORIES.get(category.replace(" ", "").lower())
        if mapped is not None:
            return mapped
    # An unknown state is shown as CXone names it.
    return name.lower() if name is not None else None


def media_name(value: Any) -> str | None:
    """Return Floorview's name for a CXone media type name."""
    text = short_text(value)
    if text is None:
        return None
    return MEDIA_NAMES.get(text.replace(" ", "").lower(), text.lower())


def contact_id(item: Any) -> str:
    """Return the ``contactId`` of one ``activeContacts[]`` record, whatever its other fields hold."""
    if not isinstance(item, dict):
        raise ParseError("a contact is not an object")
    return entity_id(item.get("contactId"), "contactId")


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
        campaign=short_text(item.get("campaignName")),
        disposition=short_text(item.get("dispositionName")),
        started_at=shown_time(item.get("startDate")),
    )
