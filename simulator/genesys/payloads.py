"""Genesys-shaped JSON bodies built from the model, shared by REST replies and topic messages.

Field names follow Genesys' public API (PureCloudPlatformClientV2 models);
where REST and the socket spell a value differently (presence: ``OnQueue``
over REST, ``ON_QUEUE`` on the socket) each builder says which it is for.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from simulator.model import OFF_QUEUE, Contact, ContactCentreModel, SimAgent, SimQueue
from simulator.presence import SYSTEM_PRESENCES, presence_id, rest_name, socket_name
from simulator.timefmt import INTERVAL_SECONDS, interval_text, iso

ROUTING_STATUSES = ("OFF_QUEUE", "IDLE", "INTERACTING", "NOT_RESPONDING", "COMMUNICATING")
CONVERSATION_METRICS = ("oWaiting", "oInteracting", "oAlerting", "oLongestWaiting", "oLongestInteracting")
USER_METRICS = (
    "oOnQueueUsers",
    "oOffQueueUsers",
    "oActiveUsers",
    "oMemberUsers",
    "oUserRoutingStatuses",
    "oUserPresences",
)
OBSERVATION_METRICS = CONVERSATION_METRICS + USER_METRICS
AGGREGATE_METRICS = ("nOffered", "tAnswered", "tAbandon", "oServiceLevel")
# Observation lists are cut here, as Genesys truncates them (and says so).
MAX_OBSERVATIONS = 100
MEDIA_TYPES = ("call", "callback", "chat", "email", "message")


# -- routing: queues, members, users -----------------------------------------


def queue_entity(queue: SimQueue) -> dict[str, Any]:
    """Return a Queue as ``GET /api/v2/routing/queues`` lists it."""
    service_level = {"percentage": queue.sl_target, "durationMs": int(queue.sl_threshold * 1000)}
    return {
        "id": queue.id,
        "name": queue.name,
        "division": {"id": "00000000-0000-4000-8000-000000000001", "name": "Home"},
        "mediaSettings": {
            media: {"alertingTimeoutSeconds": 8, "serviceLevel": dict(service_level)} for media in MEDIA_TYPES
        },
        "acwSettings": {"wrapupPrompt": "OPTIONAL"},
        "skillEvaluationMethod": "ALL",
        "memberCount": len(queue.member_ids),
        "joinedMemberCount": len(queue.member_ids),
        "selfUri": f"/api/v2/routing/queues/{queue.id}",
    }


def routing_status(agent: SimAgent) -> dict[str, Any]:
    """Return a RoutingStatus (REST and socket alike)."""
    return {"userId": agent.id, "status": agent.routing_status, "startTime": iso(agent.routing_since)}


def presence_definition(presence: str, *, socket: bool) -> dict[str, Any]:
    """Return a presence definition reference, spelled for the socket or for REST."""
    return {
        "id": presence_id(presence),
        "systemPresence": socket_name(presence) if socket else rest_name(presence),
        "selfUri": f"/api/v2/presencedefinitions/{presence_id(presence)}",
    }


def user_presence(agent: SimAgent, *, socket: bool = False) -> dict[str, Any]:
    """Return a UserPresence (REST by default; ``socket=True`` for ``v2.users.{id}.presence``)."""
    return {
        "source": "PURECLOUD",
        "presenceDefinition": presence_definition(agent.presence, socket=socket),
        "primary": True,
        "message": "",
        "modifiedDate": iso(agent.presence_since),
    }


def bulk_presence(agent: SimAgent) -> dict[str, Any]:
    """Return one entry of ``GET /api/v2/users/presences/purecloud/bulk``."""
    return {"userId": agent.id} | user_presence(agent)


def member_entity(agent: SimAgent, expand: set[str]) -> dict[str, Any]:
    """Return a QueueMember, with routing status and presence when EXPAND asks for them."""
    user: dict[str, Any] = {"id": agent.id, "name": agent.name, "selfUri": f"/api/v2/users/{agent.id}"}
    entity: dict[str, Any] = {
        "id": agent.id,
        "name": agent.name,
        "user": user,
        "ringNumber": 1,
        "joined": True,
        "memberBy": "user",
        "selfUri": f"/api/v2/users/{agent.id}",
    }
    if "routingStatus" in expand:
        entity["routingStatus"] = user["routingStatus"] = routing_status(agent)
    if "presence" in expand:
        entity["presence"] = user["presence"] = user_presence(agent)
    return entity


def presence_definitions() -> list[dict[str, Any]]:
    """Return the system presence definitions (``GET /api/v2/presence/definitions``)."""
    return [
        {
            "id": presence_id(name),
            "systemPresence": rest_name(name),
            "languageLabels": {"en_US": rest_name(name).replace("OnQueue", "On Queue")},
            "primary": True,
            "deactivated": False,
            "type": "System",
            "selfUri": f"/api/v2/presence/definitions/{presence_id(name)}",
        }
        for name in SYSTEM_PRESENCES
    ]


# -- user topics --------------------------------------------------------------


def activity_body(agent: SimAgent) -> dict[str, Any]:
    """Return the eventBody of ``v2.users.{id}.activity``."""
    return {
        "id": agent.id,
        "routingStatus": {"status": agent.routing_status, "startTime": iso(agent.routing_since)},
        "presence": {
            "presenceDefinition": {
                "id": presence_id(agent.presence),
                "systemPresence": socket_name(agent.presence),
            },
            "presenceMessage": "",
            "modifiedDate": iso(agent.presence_since),
        },
        "outOfOffice": {"active": False},
        "activeQueueIds": sorted(agent.queue_ids),
        "dateActiveQueuesChanged": iso(agent.presence_since),
    }


def presence_body(agent: SimAgent) -> dict[str, Any]:
    """Return the eventBody of ``v2.users.{id}.presence`` (upper-case system presence)."""
    return user_presence(agent, socket=True)


def routing_status_body(agent: SimAgent) -> dict[str, Any]:
    """Return the eventBody of ``v2.users.{id}.routingStatus``."""
    return {"id": agent.id, "routingStatus": {"status": agent.routing_status, "startTime": iso(agent.routing_since)}}


def combined_body(agent: SimAgent, kinds: frozenset[str]) -> dict[str, Any]:
    """Return the eventBody of a combined topic such as ``v2.users.{id}?presence&routingStatus``."""
    body: dict[str, Any] = {"id": agent.id}
    if "presence" in kinds:
        body["presence"] = presence_body(agent)
    if "routingStatus" in kinds:
        body["routingStatus"] = {"status": agent.routing_status, "startTime": iso(agent.routing_since)}
    return body


def membership_body(queue_id: str, user_id: str, joined: bool) -> dict[str, Any]:
    """Return the eventBody of ``v2.routing.queues.{id}.users``."""
    return {"id": user_id, "user": {"id": user_id}, "queueId": queue_id, "joined": joined}


# -- queue observations ---------------------------------------------------------


def _observation(contact: Contact, since: float) -> dict[str, Any]:
    item = {
        "observationDate": iso(since),
        "conversationId": contact.id,
        "sessionId": contact.session_id,
        "routingPriority": 0,
        "participantName": contact.participant_name,
        "direction": "inbound",
        "ani": contact.ani,
        "dnis": contact.dnis,
        "requestedRoutings": ["Standard"],
    }
    if contact.agent_id is not None:
        item["userId"] = contact.agent_id
    return item


def _observations(pairs: list[tuple[Contact, float]]) -> dict[str, Any]:
    ordered = sorted(pairs, key=lambda pair: (pair[1], pair[0].order))
    return {
        "observations": [_observation(c, since) for c, since in ordered[:MAX_OBSERVATIONS]],
        "truncated": len(ordered) > MAX_OBSERVATIONS,
    }


def _conversation_metric(model: ContactCentreModel, queue: SimQueue, metric: str, detail: bool) -> dict[str, Any]:
    now_ms = round(model.now * 1000)
    if metric in ("oWaiting", "oLongestWaiting"):
        pairs = [(c, c.start) for c in queue.waiting]
    elif metric == "oAlerting":
        pairs = [(c, c.offered_at) for c in queue.alerting.values()]
    else:
        pairs = [(c, c.connected_at) for c in queue.interacting.values()]
    entry: dict[str, Any] = {"metric": metric, "stats": {"count": len(pairs)}}
    if metric in ("oLongestWaiting", "oLongestInteracting"):
        if pairs:
            oldest = min(pairs, key=lambda pair: (pair[1], pair[0].order))
            entry["stats"]["calculatedMetricValue"] = max(0, now_ms - round(oldest[1] * 1000))
            # The longest one always comes with its observation: it carries the start time exactly.
            entry |= _observations([oldest])
        return entry
    if detail and pairs:
        entry |= _observations(pairs)
    return entry


def _user_metrics(model: ContactCentreModel, queue: SimQueue, metric: str) -> list[dict[str, Any]]:
    members = [model.agents[a] for a in sorted(queue.member_ids)]
    if metric == "oUserRoutingStatuses":
        statuses = Counter(a.routing_status for a in members)
        return [
            {"metric": metric, "qualifier": status, "stats": {"count": statuses[status]}} for status in ROUTING_STATUSES
        ]
    if metric == "oUserPresences":
        presences = Counter(a.presence for a in members)
        return [
            {"metric": metric, "qualifier": presence_id(presence), "stats": {"count": presences[presence]}}
            for presence in SYSTEM_PRESENCES
        ]
    if metric == "oOnQueueUsers":
        count = sum(a.routing_status != OFF_QUEUE for a in members)
    elif metric == "oOffQueueUsers":
        count = sum(a.routing_status == OFF_QUEUE and a.presence != "offline" for a in members)
    elif metric == "oActiveUsers":
        count = sum(a.presence != "offline" for a in members)
    else:
        count = len(members)
    return [{"metric": metric, "stats": {"count": count}}]


def observation_data(
    model: ContactCentreModel, queue: SimQueue, metrics: list[str], details: set[str]
) -> list[dict[str, Any]]:
    """Return the metric entries for METRICS of QUEUE now (observations attached for DETAILS)."""
    data: list[dict[str, Any]] = []
    for metric in metrics:
        if metric in CONVERSATION_METRICS:
            data.append(_conversation_metric(model, queue, metric, metric in details))
        elif metric in USER_METRICS:
            data.extend(_user_metrics(model, queue, metric))
    return data


def instant_observation_bodies(model: ContactCentreModel, queue: SimQueue) -> list[dict[str, Any]]:
    """Return the instant observation message bodies (interval start equals end) for the queue topic.

    As Genesys groups them: contact metrics per queue and media type, agent metrics per queue.
    """
    instant = interval_text(model.now, model.now)
    conversation = observation_data(model, queue, list(CONVERSATION_METRICS), {"oWaiting"})
    users = observation_data(model, queue, list(USER_METRICS), set())
    return [
        {
            "group": {"queueId": queue.id, "mediaType": queue.media_type},
            "data": [{"interval": instant, "metrics": conversation}],
        },
        {"group": {"queueId": queue.id}, "data": [{"interval": instant, "metrics": users}]},
    ]


def aggregate_data(queue: SimQueue, metrics: list[str]) -> list[dict[str, Any]]:
    """Return the current-interval aggregates of QUEUE for METRICS."""
    data: list[dict[str, Any]] = []
    for metric in metrics:
        if metric == "nOffered":
            stats: dict[str, Any] = {"count": queue.offered}
        elif metric == "tAnswered":
            total, longest = queue.answered_wait_ms
            stats = {"count": queue.answered, "sum": total, "max": longest}
        elif metric == "tAbandon":
            total, longest = queue.abandon_wait_ms
            stats = {"count": queue.abandoned, "sum": total, "max": longest}
        elif metric == "oServiceLevel":
            stats = {"numerator": queue.sl_numerator, "denominator": queue.sl_denominator, "target": queue.sl_target}
            if queue.sl_denominator:
                stats["ratio"] = queue.sl_numerator / queue.sl_denominator
        else:
            continue
        data.append({"metric": metric, "stats": stats})
    return data


def current_interval(queue: SimQueue) -> str:
    """Return the queue's current 30-minute interval as ``start/end``."""
    return interval_text(queue.interval_start, queue.interval_start + INTERVAL_SECONDS)


def interval_body(queue: SimQueue) -> dict[str, Any]:
    """Return an interval aggregate message body for the queue topic (the current 30 minutes, per media type)."""
    return {
        "group": {"queueId": queue.id, "mediaType": queue.media_type},
        "data": [{"interval": current_interval(queue), "metrics": aggregate_data(queue, list(AGGREGATE_METRICS))}],
    }


# -- conversations ----------------------------------------------------------------


def conversation_body(contact: Contact) -> dict[str, Any]:
    """Return the eventBody of ``v2.routing.queues.{id}.conversations`` for a contact."""
    media_key = "messages" if contact.media_type == "message" else "calls"
    ended = iso(contact.ended_at) if contact.ended_at is not None else None
    customer: dict[str, Any] = {
        "id": contact.customer_participant_id,
        "purpose": "customer",
        "name": contact.participant_name,
        "address": contact.ani,
        "connectedTime": iso(contact.start),
        "attributes": {},
        media_key: [{"id": contact.session_id, "state": "disconnected" if ended else "connected"}],
    }
    if ended:
        customer["endTime"] = ended
    acd: dict[str, Any] = {
        "id": contact.acd_participant_id,
        "purpose": "acd",
        "queueId": contact.queue_id,
        "connectedTime": iso(contact.start),
        "attributes": {},
        media_key: [],
    }
    # The ACD leg ends when an agent connects or the caller leaves.
    acd_end = contact.connected_at if contact.connected_at is not None else contact.ended_at
    if acd_end is not None:
        acd["endTime"] = iso(acd_end)
    participants = [customer, acd]
    if contact.agent_id is not None:
        agent: dict[str, Any] = {
            "id": contact.agent_participant_id,
            "purpose": "agent",
            "userId": contact.agent_id,
            "queueId": contact.queue_id,
            "attributes": {},
            media_key: [],
        }
        if contact.connected_at is not None:
            agent["connectedTime"] = iso(contact.connected_at)
        if contact.state in ("acw", "ended"):
            agent["endTime"] = ended
        participants.append(agent)
    return {"id": contact.id, "participants": participants}


def detail_event_body(contact: Contact, event: str, time: float) -> dict[str, Any]:
    """Return the eventBody of ``v2.detail.events.conversation.{id}.<event>``."""
    body: dict[str, Any] = {
        "eventTime": round(time * 1000),
        "conversationId": contact.id,
        "participantId": contact.agent_participant_id
        if event.startswith(("user", "acw", "wrapup"))
        else contact.customer_participant_id,
        "sessionId": contact.session_id,
        "mediaType": contact.media_type.upper(),
        "direction": "INBOUND",
        "queueId": contact.queue_id,
        "ani": contact.ani,
        "dnis": contact.dnis,
    }
    if contact.media_type == "message":
        body["messageType"] = "WEBMESSAGING"
    if contact.agent_id is not None:
        body["userId"] = contact.agent_id
    if event == "acd.end":
        body["acdOutcome"] = "ABANDON" if contact.abandoned else "ANSWERED"
        if not contact.abandoned:
            body["answeredUserId"] = contact.agent_id
    if event == "wrapup":
        body["wrapupCode"] = "00000000-0000-4000-8000-00000000c0de"
    return body
