"""Upstream text made safe for one log line or one health note: control characters escaped.

A vendor's error body, a close reason, a header or a frame excerpt is text
that someone else wrote. Written into a log as it came, a newline in it starts
what looks like a log line of ours, a carriage return hides what came before,
and an escape sequence recolours or rewrites the operator's terminal. Every
such text goes through ``safe_text`` before it reaches a log or a health note:
each C0 and C1 control character (and DEL, and the Unicode line and paragraph
separators) is written as a visible escape (``\\n``, ``\\x1b``, ``\\u2028``).
"""

from __future__ import annotations

import re

# C0 (U+0000-U+001F), DEL, C1 (U+0080-U+009F), and the two Unicode line breaks that splitlines() honours.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: object, limit: int | None = None) -> str:
    """Return VALUE as text on one line, every control character escaped, cut to LIMIT characters if given.

    The cut comes after escaping, so an escape may be cut short but nothing raw slips through.
    """
    text = _CONTROL.sub(_escape, value if isinstance(value, str) else str(value))
    return text if limit is None else text[:limit]
