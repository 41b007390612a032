"""A connecting viewer's grant is read again only when the access watch may have missed a revocation."""

from __future__ import annotations

from channels.layers import InMemoryChannelLayer

from dashboard.access import AccessWatch
from dashboard.protocol import ACCESS_CHANGED, ACCESS_GROUP
from tests.timing import eventually


async def test_a_watch_that_listened_and_heard_nothing_says_so_and_any_announcement_ends_that():
    layer = InMemoryChannelLayer()
    watch = AccessWatch(layer, on_empty=lambda _: None, period=3600)
    try:
        assert await watch.listening(5)
        mark = watch.mark()
        assert mark is not None and watch.heard_nothing_since(mark)
        # An announcement about anyone at all: a grant read before it must be read again.
        await layer.group_send(ACCESS_GROUP, {"type": ACCESS_CHANGED, "boards": [999]})
        await eventually(lambda: watch.heard > mark, within=5, what="the announcement")
        assert not watch.heard_nothing_since(mark)
        assert watch.heard_nothing_since(watch.mark())
        # A watch that lost its group (the layer away) marks nothing: announcements may have been lost.
        watch.subscription.joined.clear()
        assert watch.mark() is None and not watch.heard_nothing_since(mark)
        # Rejoining counts as hearing: it re-checks everyone, and a grant read before it is read again.
        watch.subscription.joined.set()
        before = watch.mark()
        await watch._rejoined()
        assert not watch.heard_nothing_since(before)
    finally:
        watch.subscription.stop()
        watch._sweeping.cancel()
