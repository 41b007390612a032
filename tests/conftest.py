"""Shared fixtures."""

import pytest


@pytest.fixture
def site(tmp_path):
    """Daphne serving a seeded board under a private Redis prefix: (server, ids, prefix); see tests/board_site.py."""
    from tests.board_site import board_site

    with board_site(tmp_path) as running:
        yield running
