"""Shared fixtures."""

import pytest


@pytest.fixture
def site(tmp_path):
    """Daphne serving a seeded board under a private Redis prefix: (server, ids, prefix); see tests/board_site.py."""
    from tests.board_site import board_site

    with board_site(tmp_path) as running:
        yield running


@pytest.fixture
def p(settings):
    """The personas (tests/personas.py) on the in-memory channel layer and the in-process snapshot store."""
    from streams import snapshots
    from tests.personas import FAST_HASHERS, make_personas

    settings.REDIS_URL = ""
    settings.PASSWORD_HASHERS = FAST_HASHERS
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    snapshots.reset_snapshot_store()
    yield make_personas()
    snapshots.reset_snapshot_store()
