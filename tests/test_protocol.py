"""The board protocol has one home (dashboard/protocol.py) that the page's script reads, never restates."""

from __future__ import annotations

import json
import re

import pytest

from dashboard import frames, protocol
from dashboard.filters import RowFilter
from dashboard.frame_order import FrameOrder, Next
from streams.health import STATES
from tests.processes import ROOT

pytestmark = [pytest.mark.django_db]


def test_every_link_state_has_a_label_for_the_page():
    assert set(protocol.HEALTH_LABELS) == {*STATES, "unknown"}


def test_the_board_page_hands_its_script_the_protocol(client, p):
    client.force_login(p.supervisor)
    html = client.get("/boards/sales/").content.decode()
    found = re.search(r'<script id="board-protocol" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the board page carries no protocol for its script"
    assert json.loads(found.group(1)) == json.loads(json.dumps(protocol.for_page()))


def test_the_script_takes_close_codes_and_health_labels_from_the_server():
    # A map restated in board.js would drift from the server's the first time either changed.
    script = (ROOT / "static" / "dashboard" / "board.js").read_text()
    for code in protocol.REFUSALS:
        assert not re.search(rf"\b{int(code)}\s*:", script), f"board.js restates close code {int(code)}"
    for state in ("degraded", "auth_failed", "disabled"):
        assert not re.search(rf"\b{state}\s*:", script), f"board.js restates the label of {state!r}"


def test_no_other_module_of_the_downstream_side_lists_the_link_states():
    # The states are streams.health's, their labels and order this protocol's: a list anywhere else would drift.
    paths = [*sorted((ROOT / "dashboard").rglob("*.py")), ROOT / "static" / "dashboard" / "board.js"]
    for path in paths:
        if path.name != "protocol.py" and "migrations" not in path.parts:
            assert "auth_failed" not in path.read_text(), f"{path.name} lists the link states again"
    assert protocol.HEALTH_WORST_FIRST[0] == "auth_failed" and protocol.HEALTH_WORST_FIRST[-1] == "live"


def test_a_frame_opens_with_a_json_head_that_names_it():
    frame = frames.tick_frame({"epoch": "e1", "seq": 4, "server_time": 10.5, "live_at": float("nan"), "health": None})
    assert "\n" not in frame
    assert json.loads(frame) == {
        "type": "tick",
        "epoch": "e1",
        "seq": 4,
        "server_time": 10.5,
        "live_at": None,
        "health": {"state": "unknown", "detail": ""},
    }
    (snapshot,), shown = frames.snapshot_frames(None, RowFilter(), ("queue",), part_bytes=None)
    head, _, html = snapshot.partition("\n")
    assert json.loads(head)["protocol"] == protocol.PROTOCOL_VERSION and html.startswith("<template>")
    assert shown == set()


def test_the_order_of_board_messages_is_checked_against_what_the_page_shows():
    order = FrameOrder()
    order.start("e1", 3)
    assert order.delta("e1", 3) is Next.SKIP  # covered by the snapshot
    assert order.delta("e1", 4) is Next.SEND and order.seq == 4
    assert order.tick("e1", 4) is Next.SEND
    assert order.tick("e1", 3) is Next.SKIP
    assert order.delta("e1", 6) is Next.RESYNC  # 5 was lost
    assert order.tick("e1", 5) is Next.RESYNC
    assert order.delta("e2", 1) is Next.RESYNC  # a new worker
    assert order.delta("e1", True) is Next.SKIP and order.delta(None, 5) is Next.SKIP
    order.start("e2", 1)  # the new worker's snapshot: the old epoch's last flushes are ignored a while
    assert order.delta("e1", 5) is Next.SKIP and order.tick("e1", 5) is Next.SKIP
