"""What the contact-centre model is made of: its knobs, contacts, queues, agents and their states."""

from __future__ import annotations

from dataclasses import dataclass, field

OFF_QUEUE, IDLE, INTERACTING, NOT_RESPONDING = "OFF_QUEUE", "IDLE", "INTERACTING", "NOT_RESPONDING"

# What the model's contact states are called on boards (and in the generic feeds' records).
INTERACTION_STATES = {"waiting": "waiting", "alerting": "alerting", "interacting": "connected", "acw": "wrapup"}
CAMPAIGNS = ("Spring Offers", "Loyalty", "Service Recovery", "Renewals Drive")
DISPOSITIONS = ("Resolved", "Sale", "Callback Requested", "Escalated", "No Sale", "Information Given")


@dataclass
class ModelConfig:
    """The knobs of the model; the defaults make a plausible small contact centre."""

    queues: int = 4
    agents: int = 20
    rate: float = 0.5  # new contacts per second across all queues
    seed: int = 1
    handle_mean: float = 30.0  # seconds connected, mean
    acw_range: tuple[float, float] = (2.0, 8.0)  # wrap-up seconds
    alert_range: tuple[float, float] = (2.0, 6.0)  # seconds until the agent answers
    alert_timeout: float = 8.0  # seconds before an unanswered offer is taken back
    not_responding_probability: float = 0.02
    not_responding_range: tuple[float, float] = (10.0, 30.0)  # seconds until the agent is back
    patience_mean: float = 60.0  # seconds a caller waits before abandoning, mean
    presence_change_mean: float = 240.0  # seconds between an agent's presence changes, mean; 0 turns them off
    sl_threshold: float = 20.0  # answered within this many seconds counts towards service level
    sl_target: float = 0.8
    on_queue_share: float = 0.8  # agents on queue at the start


@dataclass(eq=False)
class Contact:
    """One inbound contact (a Genesys conversation) while it is in the queue or with an agent."""

    id: str
    queue_id: str
    media_type: str
    start: float  # when it entered the queue (epoch seconds, ms precision)
    participant_name: str
    ani: str
    dnis: str
    session_id: str
    customer_participant_id: str
    acd_participant_id: str
    agent_participant_id: str
    state: str = "waiting"  # waiting, alerting, interacting, acw, ended
    number: int = 0  # a numeric id, for vendors with numeric contact ids (CXone)
    disposition: str | None = None  # chosen by the agent at wrap-up
    updated_at: float = 0.0  # when anything about the contact last changed
    agent_id: str | None = None
    offered_at: float | None = None
    connected_at: float | None = None
    ended_at: float | None = None
    abandon_at: float | None = None  # when the caller's patience runs out
    abandoned: bool = False
    order: int = 0  # arrival order: breaks ties between equal start times
    epoch: int = 0  # bumped on every state change; scheduled events carry the epoch they expect


@dataclass(eq=False)
class SimQueue:
    """One routing queue and the live and interval numbers behind its statistics."""

    id: str
    name: str
    media_type: str
    weight: float
    sl_threshold: float
    sl_target: float
    number: int = 0  # a numeric id, for vendors with numeric skill ids (CXone)
    campaign_id: str = ""
    campaign_name: str = ""
    member_ids: set[str] = field(default_factory=set)
    waiting: list[Contact] = field(default_factory=list)  # oldest first
    alerting: dict[str, Contact] = field(default_factory=dict)
    interacting: dict[str, Contact] = field(default_factory=dict)
    interval_start: float = 0.0
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    sl_numerator: int = 0
    sl_denominator: int = 0
    answered_wait_ms: list[int] = field(default_factory=lambda: [0, 0])  # sum, max
    abandon_wait_ms: list[int] = field(default_factory=lambda: [0, 0])  # sum, max

    def reset_interval(self, start: float) -> None:
        """Start a new 30-minute interval with zeroed aggregates."""
        self.interval_start = start
        self.offered = self.answered = self.abandoned = self.sl_numerator = self.sl_denominator = 0
        self.answered_wait_ms = [0, 0]
        self.abandon_wait_ms = [0, 0]


@dataclass(eq=False)
class SimAgent:
    """One agent (a Genesys user) with presence, routing status and queue memberships."""

    id: str
    name: str
    queue_ids: set[str]
    presence: str
    presence_since: float
    routing_status: str
    routing_since: float
    number: int = 0  # a numeric id, for vendors with numeric agent ids (CXone)
    phase: str | None = None  # None, "alerting", "interacting" or "acw"
    contact: Contact | None = None
    epoch: int = 0  # bumped on every engagement change
    presence_epoch: int = 0  # bumped when the presence timer is rescheduled

    @property
    def idle(self) -> bool:
        """Return whether routing may offer this agent a contact now."""
        return self.routing_status == IDLE and self.phase is None
