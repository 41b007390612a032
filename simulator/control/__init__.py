"""``/simulator/control``: named actions (``{"action": ...}``) and faults (``{"fault": ...}``).

Each entry is a small function registered with ``@action`` or ``@fault``
(``registry.py``); the dispatcher looks the name up, and
``GET /simulator/control`` lists both registries with their parameters.
Adding a fault is adding one function, in the module of what it acts on:
``model_actions.py``, ``genesys_faults.py``, ``feed_faults.py``,
``cxone_faults.py``, ``webhook_actions.py``.
"""

import importlib

from simulator.control.registry import ACTIONS, FAULTS, ControlError, Entry, action, describe, dispatch, fault

# Importing a module registers its entries; this order is the order the listing shows them in.
CATALOGUE = ("model_actions", "genesys_faults", "feed_faults", "cxone_faults", "webhook_actions")
for _module in CATALOGUE:
    importlib.import_module(f"simulator.control.{_module}")
del _module

__all__ = ["ACTIONS", "FAULTS", "ControlError", "Entry", "action", "describe", "dispatch", "fault"]
