"""Genesys users → agent fields: presence and routing status from a user's body, and queue membership changes.

One reading of a user's state serves the socket (``v2.users.{id}.activity``,
``.presence``, ``.routingStatus`` and their combinations) and the REST members
reply (``replies``). A presence or status of the wrong type makes the body
malformed (``ParseError``); a time out of range or unreadable leaves its
field out, and the rest of the body applies.
"""

from __future__ import annotations

from typing import Any

from streams.events import UNSET, AgentStatus, QueueMembership
from streams.vendors.genesys.values import ParseError, as_id, as_object, routing_status, shown_time, system_presence


def _presence_fields(presence: dict[str, Any]) -> dict[str, Any]:
    definition = as_object(presence.get("presenceDefinition", {}), "presenceDefinition")
    values: dict[str, Any] = {}
    if "systemPresence" in definition:
        values["presence"] = system_presence(definition["systemPresence"])
    if "modifiedDate" in presence and (since := shown_time(presence["modifiedDate"])) is not UNSET:
        values["presence_since"] = since
    return values


def _routing_fields(routing: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "status" in routing:
        values["routing_status"] = routing_status(routing["status"])
    if "startTime" in routing and (since := shown_time(routing["startTime"])) is not UNSET:
        values["routing_since"] = since
    return values


def agent_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Return AgentStatus fields from a user body: activity, presence, routingStatus or a combination."""
    values: dict[str, Any] = {}
    presence = body.get("presence")
    if isinstance(presence, dict):
        values.update(_presence_fields(presence))
    elif "presenceDefinition" in body:
        values.update(_presence_fields(body))
    routing = body.get("routingStatus")
    if isinstance(routing, dict):
        values.update(_routing_fields(routing))
    elif "status" in body and "presenceDefinition" not in body:
        values.update(_routing_fields(body))
    name = body.get("name")
    if isinstance(name, str) and name:
        values["name"] = name
    return values


def parse_user(source: str, user_id: str, body: Any) -> AgentStatus:
    """Return the AgentStatus of one user-topic eventBody."""
    body = as_object(body, "eventBody")
    values = agent_fields(body)
    if not values:
        raise ParseError("user eventBody carries neither presence nor routing status")
    return AgentStatus.of(source, user_id, values)  # the fields agent_fields read, each checked


def parse_queue_member(source: str, queue_id: str, body: Any) -> QueueMembership:
    """Return the membership change of one queue-users-topic eventBody."""
    body = as_object(body, "eventBody")
    user = body.get("user")
    agent_id = user.get("id") if isinstance(user, dict) else None
    agent_id = as_id(agent_id or body.get("id"), "user id")
    joined = body.get("joined")
    if not isinstance(joined, bool):
        raise ParseError("joined is not a boolean")
    return QueueMembership(source=source, queue_id=queue_id, agent_id=agent_id, joined=joined)
