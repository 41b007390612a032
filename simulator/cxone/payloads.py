"""CXone-shaped records built from the contact-centre model: agent states, skill activity, active contacts.

Field names follow NICE's Real-Time Data API (see
``docs/protocols/cxone.md``). Ids are the model's ``number`` fields: CXone's ids are numbers.

How the model's state reads in CXone's words:

- agents: a contact in hand (ringing or connected) is ``InboundContact``;
  wrap-up is ``Unavailable`` with the ACW code (``isACW``); on queue and idle
  is ``Available``; on queue after a refused offer is ``Unavailable`` with
  the system code ``Refused``; Genesys' "available but not on queue" is
  ``LoggedIn`` (signed in, not routable); ``offline`` is ``LoggedOut``; any
  other presence is ``Unavailable`` with that unavailable code ("Break").
  ``startDate`` is when the agent entered that CXone state.
- skills: the agent counts are over the skill's members (``agentsLoggedIn``
  = available + unavailable + working + ACW), except ``agentsWorking``,
  which counts the agents handling this skill's contacts (ringing or
  connected); ``queueCount`` and ``earliestQueueTime`` are the waiting
  contacts; ``inSLA``/``outSLA`` the interval's answered-in-time and the rest.
- contacts: ``InQueue`` (waiting), ``Routing`` (offered, ringing),
  ``Active`` (connected), ``ACW`` (the agent's wrap-up) and ``EndContact``.
  Voice is ``Phone Call``; the model's messaging queues are CXone's digital
  channel, ``Digital``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from simulator.model import CAMPAIGNS, IDLE, NOT_RESPONDING, Contact, ContactCentreModel, SimAgent, SimQueue
from simulator.timefmt import iso

BUSINESS_UNIT_ID = 4600001
TEAM = (11, "Floor Team")

# (mediaTypeId, mediaTypeName) per model media type.
MEDIA = {"voice": (4, "Phone Call"), "message": (9, "Digital")}
AGENT_STATE_IDS = {
    "LoggedOut": 0,
    "Available": 1,
    "Unavailable": 2,
    "InboundContact": 3,
    "OutboundContact": 4,
    "InboundConsult": 5,
    "OutboundConsult": 6,
    "Dialer": 7,
    "LoggedIn": 8,
}
AGENT_STATE_CATEGORIES = {
    "LoggedOut": "LoggedOut",
    "Available": "Available",
    "Unavailable": "Unavailable",
    "InboundContact": "Working",
    "LoggedIn": "Unavailable",
}
# Unavailable codes (outStateId, outStateDescription) the simulator's presences map onto.
OUT_STATES = {
    "break": (21, "Break"),
    "meal": (22, "Meal"),
    "away": (23, "Away"),
    "busy": (24, "Busy"),
    "meeting": (25, "Meeting"),
    "training": (26, "Training"),
    "idle": (27, "Idle"),
    "on_queue": (0, ""),
}
ACW_CODE = (30, "ACW")
REFUSED_CODE = (31, "Refused")
# (stateId, stateName, contactStateCategory) per model contact state.
CONTACT_STATES = {
    "waiting": (10, "InQueue", "In Queue"),
    "alerting": (3, "Routing", "In Queue"),
    "interacting": (4, "Active", "With Agent"),
    "acw": (11, "ACW", "With Agent"),
    "ended": (12, "EndContact", "Ended"),
}


def campaign_number(name: str) -> int:
    """Return the numeric campaign id of a campaign name (CXone campaign ids are numbers)."""
    return 300 + (CAMPAIGNS.index(name) if name in CAMPAIGNS else len(CAMPAIGNS))


def split_name(name: str) -> tuple[str, str]:
    """Return (first, last) of a full name."""
    first, _, last = name.partition(" ")
    return first, last


@dataclass(frozen=True, slots=True)
class AgentView:
    """One agent as CXone sees it: state name, unavailable code, ACW flag, the contact in hand, and since when."""

    state: str
    out_state: tuple[int, str]
    is_acw: bool
    contact: Contact | None
    start: float


def agent_view(agent: SimAgent) -> AgentView:
    """Return how CXone would state AGENT now."""
    contact = agent.contact
    if agent.phase in ("alerting", "interacting") and contact is not None:
        return AgentView("InboundContact", (0, ""), False, contact, agent.routing_since)
    if agent.phase == "acw" and contact is not None:
        return AgentView("Unavailable", ACW_CODE, True, contact, contact.ended_at or agent.routing_since)
    if agent.presence == "offline":
        return AgentView("LoggedOut", (0, ""), False, None, agent.presence_since)
    if agent.presence == "available":
        return AgentView("LoggedIn", (0, ""), False, None, agent.presence_since)
    if agent.presence == "on_queue":
        if agent.routing_status == IDLE:
            return AgentView("Available", (0, ""), False, None, agent.routing_since)
        if agent.routing_status == NOT_RESPONDING:
            return AgentView("Unavailable", REFUSED_CODE, False, None, agent.routing_since)
    code = OUT_STATES.get(agent.presence, (29, agent.presence.replace("_", " ").title()))
    return AgentView("Unavailable", code, False, None, agent.presence_since)


def agent_state(model: ContactCentreModel, agent: SimAgent, view: AgentView, updated: float) -> dict[str, Any]:
    """Return one ``agentStates[]`` entry."""
    first, last = split_name(agent.name)
    contact = view.contact
    queue = model.queues.get(contact.queue_id) if contact is not None else None
    media = MEDIA.get(contact.media_type, (0, "")) if contact is not None else (0, "")
    return {
        "agentId": agent.number,
        "agentStateId": AGENT_STATE_IDS[view.state],
        "agentStateName": view.state,
        "agentStateCategory": AGENT_STATE_CATEGORIES.get(view.state, view.state),
        "businessUnitId": BUSINESS_UNIT_ID,
        "contactId": contact.number if contact is not None else 0,
        "isACW": view.is_acw,
        "isOutbound": False,
        "firstName": first,
        "lastName": last,
        "lastUpdateTime": iso(updated),
        "mediaTypeId": media[0],
        "mediaTypeName": media[1],
        "outStateId": view.out_state[0],
        "outStateDescription": view.out_state[1],
        "skillId": queue.number if queue is not None else 0,
        "skillName": queue.name if queue is not None else "",
        "startDate": iso(view.start),
        "teamId": TEAM[0],
        "teamName": TEAM[1],
        "userName": f"{first}.{last}@floorview.example".lower().replace(" ", ""),
    }


def skill_activity(
    queue: SimQueue, views: dict[str, AgentView], server_time: float, media_filter: int | None = None
) -> dict[str, Any]:
    """Return one ``skillActivity[]`` entry (VIEWS: every agent's view, by agent id)."""
    counts: Counter[str] = Counter()
    for agent_id in queue.member_ids:
        view = views[agent_id]
        if view.state == "LoggedOut":
            continue
        counts["loggedIn"] += 1
        if view.state == "Available":
            counts["available"] += 1
        elif view.is_acw:
            counts["acw"] += 1
        elif view.state in ("Unavailable", "LoggedIn"):
            counts["unavailable"] += 1
    working = len(queue.alerting) + len(queue.interacting)
    media_id, media_name = MEDIA.get(queue.media_type, (0, ""))
    in_sla = queue.sl_numerator
    out_sla = queue.sl_denominator - queue.sl_numerator
    answered = in_sla + out_sla
    return {
        "serverTime": iso(server_time),
        "businessUnitId": BUSINESS_UNIT_ID,
        "skillId": queue.number,
        "skillName": queue.name,
        "campaignId": campaign_number(queue.campaign_name),
        "campaignName": queue.campaign_name,
        "mediaTypeId": media_id,
        "mediaTypeName": media_name,
        "isOutbound": False,
        "isActive": True,
        "agentsLoggedIn": counts["loggedIn"],
        "agentsAvailable": counts["available"],
        "agentsUnavailable": counts["unavailable"],
        "agentsWorking": working,
        "agentsACW": counts["acw"],
        "agentsIdle": counts["available"],
        "queueCount": len(queue.waiting),
        "skillQueueCount": len(queue.waiting),
        "personalQueueCount": 0,
        "contactsActive": len(queue.waiting) + working,
        "earliestQueueTime": iso(queue.waiting[0].start) if queue.waiting else None,
        "inSLA": in_sla,
        "outSLA": out_sla,
        "serviceLevel": round(100 * in_sla / answered) if answered else 0,
        "serviceLevelGoal": round(queue.sl_target * 100),
        "serviceLevelThreshold": round(queue.sl_threshold),
    }


def active_contact(model: ContactCentreModel, contact: Contact, updated: float, state: str) -> dict[str, Any]:
    """Return one ``activeContacts[]`` entry for CONTACT in model STATE (``ended`` for EndContact)."""
    queue = model.queues[contact.queue_id]
    agent = model.agents.get(contact.agent_id) if contact.agent_id else None
    first, last = split_name(agent.name) if agent is not None else (None, None)
    state_id, state_name, category = CONTACT_STATES[state]
    media_id, media_name = MEDIA.get(contact.media_type, (0, ""))
    record: dict[str, Any] = {
        "contactId": contact.number,
        "masterContactId": contact.number,
        "skillId": queue.number,
        "skillName": queue.name,
        "campaignId": campaign_number(queue.campaign_name),
        "campaignName": queue.campaign_name,
        "agentId": agent.number if agent is not None else None,
        "firstName": first,
        "lastName": last,
        "mediaTypeId": media_id,
        "mediaTypeName": media_name,
        "stateId": state_id,
        "contactStateCategory": category,
        "stateName": state_name,
        "startDate": iso(contact.start),
        "lastUpdateTime": iso(updated),
        "fromAddress": contact.ani.removeprefix("tel:"),
        "toAddress": contact.dnis.removeprefix("tel:"),
        "isOutbound": False,
    }
    if contact.disposition is not None:
        # Absent until the agent picks one, as CXone leaves it out.
        record["dispositionName"] = contact.disposition
    return record
