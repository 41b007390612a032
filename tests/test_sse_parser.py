"""The event-stream parser: the WHATWG rules, any chunking, any bytes, and bounded memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.vendors.sse.parser import SseEvent, SseParser


def parse(*chunks: bytes, limit: int = 1 << 20) -> tuple[list[SseEvent], SseParser]:
    parser = SseParser(max_event_chars=limit)
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events, parser


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


# Streams built from the pieces that matter (fields, colons, every line end, a BOM, multi-byte text),
# so that random splits land on interesting boundaries far more often than in random bytes.
atoms = st.sampled_from(
    [
        b"data",
        b"data:",
        b"data: ",
        b"event: ",
        b"id: ",
        b"retry: ",
        b":",
        b" ",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"x",
        b"123",
        b"\xef\xbb\xbf",
        "é€😀".encode(),
        b"\xff",
        b"\x00",
        b"reconnect",
    ]
)
streams = st.lists(atoms, max_size=60).map(b"".join) | st.binary(max_size=200)


@settings(max_examples=500)
@given(streams, st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_any_chunking_gives_the_same_events(data, cuts):
    whole, whole_parser = parse(data)
    pieces, pieces_parser = parse(*split(data, cuts))
    assert pieces == whole
    assert (pieces_parser.retry, pieces_parser.last_event_id) == (whole_parser.retry, whole_parser.last_event_id)


@settings(max_examples=300)
@given(st.binary(max_size=500), st.integers(min_value=1, max_value=64))
def test_arbitrary_bytes_never_raise(data, limit):
    events, _ = parse(data, limit=limit)
    assert all(isinstance(e.type, str) and isinstance(e.data, str) for e in events)


event_text = st.text(alphabet=st.characters(exclude_characters="\r\n\x00", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=200)
@given(
    st.lists(st.tuples(event_text, st.lists(event_text, min_size=1, max_size=3), event_text), max_size=5),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_every_line_end_gives_the_same_events(events, line_end):
    lines = []
    for kind, data_lines, event_id in events:
        lines += [f"event: {kind}", *(f"data: {d}" for d in data_lines), f"id: {event_id}", ""]
    parsed, _ = parse(line_end.join(lines).encode() + line_end.encode())
    expected = [(kind, "\n".join(data), event_id) for kind, data, event_id in events]
    assert [(e.type, e.data, e.last_event_id) for e in parsed] == expected


def test_the_standard_s_examples():
    events, _ = parse(b"data: YHOO\ndata: +2\ndata: 10\n\n")
    assert [e.data for e in events] == ["YHOO\n+2\n10"]

    events, parser = parse(
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n"
    )
    assert [(e.data, e.last_event_id) for e in events] == [("first event", "1"), ("second event", "")]
    assert parser.last_event_id == ""  # the third event never ended: not dispatched

    events, _ = parse(b"data\n\ndata\ndata\n\ndata:")
    assert [e.data for e in events] == ["", "\n"]

    events, _ = parse(b"data:test\n\ndata: test\n\n")
    assert [e.data for e in events] == ["test", "test"]


def test_fields_follow_the_rules():
    events, parser = parse(
        b"\xef\xbb\xbfretry: 2500\nevent: reconnect\ndata: {}\nunknown: field\n\n"
        b"retry: soon\nretry: 99999999999\nid: a\x00b\ndata: x\n\n"
    )
    assert [(e.type, e.data) for e in events] == [("reconnect", "{}"), ("", "x")]
    assert parser.retry == 2500  # not digits, or absurdly long: ignored
    assert parser.last_event_id == ""  # an id holding NUL is ignored


def test_an_id_without_data_still_moves_the_last_event_id():
    events, parser = parse(b"data: a\nid: 1\n\nid: 7\n\n: keepalive\n\n")
    assert [(e.data, e.last_event_id) for e in events] == [("a", "1"), ("", "7")]
    assert parser.last_event_id == "7"


def test_an_oversized_event_is_dropped_as_it_streams_and_the_next_one_is_kept():
    parser = SseParser(max_event_chars=1000)
    chunk = b"x" * 4096
    events = parser.feed(b"data: ")
    for _ in range(1000):  # 4 MiB of one line, never held
        events += parser.feed(chunk)
        assert sum(len(piece) for piece in parser._line) <= 1000
    events += parser.feed(b"\nid: 5\ndata: more\n\ndata: fine\n\n")
    assert [(e.oversized, e.data) for e in events] == [(True, ""), (False, "fine")]


def test_many_data_lines_add_up_to_the_limit():
    events, _ = parse(b"data: 12345\n" * 300 + b"\n", limit=1000)
    assert [e.oversized for e in events] == [True]
    events, _ = parse(b": keepalive\n" * 3000 + b"data: ok\n\n", limit=1000)
    assert [e.data for e in events] == ["ok"]  # comments are not kept, so they do not count
