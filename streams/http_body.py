"""Reading a whole HTTP reply body with a size cap: the one way Floorview's HTTP clients read replies.

``aiohttp``'s ``content.read(n)`` returns whatever is buffered, up to N bytes,
not N bytes: a reply larger than one socket buffer comes back cut short (a
177 KB page read as 128 KB is "not JSON"). ``read_body`` reads chunk after
chunk until the end of the body, and enforces the cap on the declared
``Content-Length`` up front (nothing is read of a body declared too large) and
on the bytes actually read (chunked replies, or a server that declares less
than it sends; decompressed bytes count, not the bytes on the wire).
"""

from __future__ import annotations

import aiohttp

CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """A reply body above the cap: declared so (``declared`` holds its Content-Length) or found so while reading."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        how = f"declares {declared} bytes" if declared is not None else "holds more"
        super().__init__(f"the reply {how}, above the limit of {limit} bytes")
        self.limit = limit
        self.declared = declared


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """Return the whole body of RESPONSE; raise BodyTooLarge when it is (or says it is) above LIMIT bytes.

    Network failures while reading raise what aiohttp raises (``aiohttp.ClientError``, ``TimeoutError``).
    """
    limit = max(limit, 0)
    declared = response.content_length
    # Only a body sent as is can be judged by its declared length: a compressed one is judged as it is read.
    if declared is not None and declared > limit and not response.headers.get("Content-Encoding"):
        raise BodyTooLarge(limit, declared)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(CHUNK):
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
