"""The contact-centre model behind the simulator: queues, agents, contacts, and their ground truth.

``ContactCentreModel`` (``contact_centre.py``) is made of parts, one module
each: what it holds (``entities.py``), its clock of due events
(``clock.py``), a contact's life through routing (``routing.py``), agents'
presence and routing status (``agent_status.py``), the truth it shows
(``truth.py``) and the changes it reports (``changes.py``). The names the
rest of the simulator uses are importable from here.
"""

from simulator.model.changes import (
    AgentChange,
    Change,
    ConversationChange,
    Listener,
    MembershipChange,
    QueueChange,
)
from simulator.model.contact_centre import ContactCentreModel
from simulator.model.entities import (
    CAMPAIGNS,
    DISPOSITIONS,
    IDLE,
    INTERACTING,
    INTERACTION_STATES,
    NOT_RESPONDING,
    OFF_QUEUE,
    Contact,
    ModelConfig,
    SimAgent,
    SimQueue,
)

__all__ = [
    "CAMPAIGNS",
    "DISPOSITIONS",
    "IDLE",
    "INTERACTING",
    "INTERACTION_STATES",
    "NOT_RESPONDING",
    "OFF_QUEUE",
    "AgentChange",
    "Change",
    "Contact",
    "ContactCentreModel",
    "ConversationChange",
    "Listener",
    "MembershipChange",
    "ModelConfig",
    "QueueChange",
    "SimAgent",
    "SimQueue",
]
