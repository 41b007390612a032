"""The board protocol has one home (dashboard/protocol.py) that the page's script reads, never restates."""

from __future__ import annotations

import json
import re

import pytest

from dashboard import protocol
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
