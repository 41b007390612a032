"""The webhook sender's action (where to post) and its probes (``webhook_*`` faults: odd deliveries)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from simulator.control.params import read_flag, read_number, read_text
from simulator.control.registry import ControlError, action, fault

if TYPE_CHECKING:
    from simulator.server import SimulatorServer


@action(
    "webhook_target",
    "Post the generic records to a Floorview webhook from now on (the live contacts first); no url: stop.",
    {
        "url": "e.g. http://127.0.0.1:8000/hooks/<slug>/ (empty or absent: stop posting)",
        "secret": "the webhook's signing secret",
        "eventbridge": "also forward Genesys notifications in EventBridge envelopes (default false)",
    },
)
def _webhook_target(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    url = payload.get("url")
    if url in (None, ""):
        server.webhooks.clear_target()
        return server.webhooks.describe()
    if not isinstance(url, str):
        raise ControlError("url must be a string")
    server.webhooks.set_target(url, read_text(payload, "secret"), eventbridge=read_flag(payload, "eventbridge"))
    return server.webhooks.describe()


def _webhook_probe(server: SimulatorServer, payload: dict[str, Any], *, kind: str) -> dict[str, Any]:
    count = int(read_number(payload, "count", 1, 1, 100))
    return {"queued": server.webhooks.probe(kind, count)}


_PROBE_COUNT = {"count": "how many (default 1); the replies show in settings.webhook.probes"}


# Each probe of ``webhooks.PROBES`` is the fault webhook_<probe>.
_PROBES = {
    "duplicate": "Post the last delivered batch again (same ids): acknowledged, applied once.",
    "forged_signature": "Post a made-up contact signed with the wrong secret: 401.",
    "stale_timestamp": "Post a made-up contact, signed, stamped 10 minutes ago: 401.",
    "oversized_body": "Post a signed 2 MiB body (above the default 1 MiB limit): 413.",
    "garbage_body": "Post a signed body that is not JSON: 400.",
}
for _kind, _help in _PROBES.items():
    fault(f"webhook_{_kind}", _help, _PROBE_COUNT)(partial(_webhook_probe, kind=_kind))
del _kind, _help
