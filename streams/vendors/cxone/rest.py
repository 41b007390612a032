"""The CXone REST client: bearer auth, one retry after a 401, and paging with ``top``/``skip``.

It retries nothing else by itself: a 429 or 5xx is raised as ``CxoneError``
with the server's Retry-After, and the poller decides when to call again
(its backoff and circuit breaker, see ``poller.py``). A 304 is an
answer, not an error: nothing changed since ``updatedSince``. A 403 is
``AuthFailed``: the API user lacks a permission, and only an admin can give
it. A redirect is never followed (the bearer token would go along).

Paging follows ``_links.next``, resolved against the page it came on (CXone
writes absolute links; a server-relative one works too), and only to the
API's own origin: same scheme, host and port, so the token never travels
elsewhere nor in clear. What a fetch read is reported honestly: ``complete``
says every page was read, ``may_have_skipped`` that the list shrank while it
was paged through (``skip`` counts from the start of the list as it is *now*:
a record leaving an earlier page shifts the next unread one out of reach).
A fetch holds at most ``max_records`` records and ``max_fetch_bytes`` bytes:
beyond either it fails rather than fill the worker's memory.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from streams.http_body import BodyTooLarge, read_body
from streams.link.failures import AuthFailed, UpstreamError
from streams.oauth import TokenUnavailable
from streams.origins import origin
from streams.retry_after import parse_retry_after
from streams.vendors.cxone.auth import CxoneAuth, error_code
from streams.vendors.cxone.parsers import parse_page
from streams.vendors.cxone.values import ParseError

log = logging.getLogger(__name__)

EPOCH = "1970-01-01T00:00:00.000Z"  # updatedSince for "everything"
MAX_PAGES = 1000  # a server that keeps handing out next links must not keep us forever
MAX_REPLY_BYTES = 32 * 1024 * 1024  # one page
MAX_FETCH_BYTES = 64 * 1024 * 1024  # all the pages of one fetch
MAX_FETCH_RECORDS = 50_000  # as many interactions as the Floor holds per source


class CxoneError(UpstreamError):
    """A CXone call failed (status, throttling, network, or an unusable reply); ``retry_after`` is what the
    server asked for (429/503 Retry-After): the poller and the loop wait it out."""


@dataclass
class Fetched:
    """The records of one real-time call (all pages), the poll time to continue from, and how whole they are.

    ``complete``: every page was read (a first-page 304 is complete: nothing
    changed). ``may_have_skipped``: the list shrank while it was paged
    through, or held fewer records than ``totalRecords`` said, so a record
    may have been missed. ``problem`` says why a list is not complete.
    """

    items: list[dict[str, Any]] = field(default_factory=list)
    last_poll_time: str | None = None
    not_modified: bool = False
    pages: int = 0
    complete: bool = False
    may_have_skipped: bool = False
    problem: str | None = None

    @property
    def whole(self) -> bool:
        """Return whether the list can be trusted to hold every record: complete, and nothing skipped."""
        return self.complete and not self.may_have_skipped


@dataclass(frozen=True)
class Reply:
    """One answer of the API: status, headers, the JSON body (None if none), and its size in bytes."""

    status: int
    headers: Any
    body: Any
    size: int


class CxoneRest:
    """Call one tenant's CXone API (``<api_endpoint>/inContactAPI/services/<version>``) with tokens from AUTH."""

    def __init__(
        self,
        api_base: str,
        auth: CxoneAuth,
        session: aiohttp.ClientSession,
        *,
        timeout: float = 30.0,
        max_bytes: int = MAX_REPLY_BYTES,
        max_fetch_bytes: int = MAX_FETCH_BYTES,
        max_records: int = MAX_FETCH_RECORDS,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.api_origin = origin(self.api_base)
        self.auth = auth
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_bytes = max_bytes
        self.max_fetch_bytes = max_fetch_bytes
        self.max_records = max_records
        self.max_pages = max_pages
        self.calls = 0

    def url(self, path: str) -> str:
        """Return the absolute URL of PATH, a path under the API base (``/agents/states``)."""
        return f"{self.api_base}/{path.lstrip('/')}"

    def next_url(self, current: str, link: str) -> str:
        """Return the absolute URL of a ``_links.next`` LINK found on the page at CURRENT; refuse other origins.

        The bearer token goes with the request: it must reach nobody but the
        API CXone named, and over TLS whenever the API is HTTPS. (The API is
        plain HTTP only when an admin pointed Floorview at one, like the simulator.)
        """
        url = urljoin(current, link.strip())
        if origin(url) != self.api_origin:
            scheme, host, port = origin(url)
            raise CxoneError(f"refusing to follow a next link to another origin: {scheme}://{host[:80]}:{port}")
        return url

    async def get(self, url: str, params: dict[str, Any] | None = None, *, limit: int | None = None) -> Reply:
        """GET URL and return the reply; a 304 comes back with no body; other failures raise.

        LIMIT caps the reply's bytes below ``max_bytes`` (what is left of a fetch's budget).
        """
        retried = False
        while True:
            try:
                token = await self.auth.token()
            except TokenUnavailable as exc:
                raise CxoneError(str(exc), retry_after=exc.retry_after) from None
            reply = await self._send(url, token, params, limit)
            if reply.status == 401:
                await self.auth.invalidate(token)
                if retried:
                    raise AuthFailed(f"GET {_shown(url)} refused a fresh token (401)")
                retried = True
                continue
            if reply.status == 403:
                # The token is good but the API user may not read this: only an admin can change that.
                raise AuthFailed(f"GET {_shown(url)} was refused (403): the API user lacks a permission")
            if reply.status == 304:
                return reply
            if 300 <= reply.status < 400:
                raise CxoneError(
                    f"GET {_shown(url)} answered {reply.status}, a redirect: not followed (check the API address)",
                    reply.status,
                )
            if reply.status >= 400:
                wait = parse_retry_after(reply.headers.get("Retry-After"))
                text = f"GET {_shown(url)} answered {reply.status} {error_code(reply.body)}".strip()
                raise CxoneError(text, reply.status, wait)
            return reply

    async def fetch(self, path: str, root: str, since: str, *, top: int) -> Fetched:
        """Return every record under ROOT changed since SINCE, following ``_links.next`` through the pages.

        The poll time to continue from is the first page's: whatever changed
        while the later pages were read is asked for again next time. A list
        cut short (too many pages, a link seen before, an empty page that
        links on, a 304 after the first page) comes back with ``complete``
        false; too many records or bytes raise ``CxoneError``.
        """
        fetched = Fetched()
        url = self.url(path)
        params: dict[str, Any] | None = {"updatedSince": since, "top": top, "skip": 0}
        seen: set[str] = set()
        received = 0
        last_total: int | None = None
        while True:
            reply = await self.get(url, params, limit=self.max_fetch_bytes - received)
            received += reply.size
            if reply.status == 304:
                if fetched.pages == 0:
                    # Nothing changed (or, from the epoch, nothing is there): a whole, empty answer.
                    fetched.not_modified = fetched.complete = True
                else:
                    self._cut(fetched, path, "answered 304 after the first page")
                return fetched
            fetched.pages += 1
            try:
                page = parse_page(reply.body, root)
            except ParseError as exc:
                raise CxoneError(f"GET {path} sent an unusable reply: {exc}") from None
            if len(fetched.items) + len(page.items) > self.max_records:
                raise CxoneError(f"GET {path} holds more than {self.max_records} records: not read")
            fetched.items.extend(page.items)
            if fetched.pages == 1:
                fetched.last_poll_time = page.last_poll_time
            if page.total is not None:
                if last_total is not None and page.total < last_total:
                    fetched.may_have_skipped = True
                last_total = page.total
            if page.next_link is None:
                break
            if not page.items:
                self._cut(fetched, path, "an empty page linked to another")
                return fetched
            link = self.next_url(url, page.next_link)
            if link in seen:
                self._cut(fetched, path, "a next link came round again")
                return fetched
            if fetched.pages >= self.max_pages:
                self._cut(fetched, path, f"more than {self.max_pages} pages")
                return fetched
            seen.add(link)
            url, params = link, None
        if last_total is not None and len(fetched.items) < last_total:
            # Fewer records than the server counted: some were on no page we read.
            fetched.may_have_skipped = True
        fetched.complete = True
        return fetched

    def _cut(self, fetched: Fetched, path: str, why: str) -> None:
        fetched.complete = False
        fetched.problem = why
        log.warning("GET %s: %s after %d page(s); the list is incomplete", path, why, fetched.pages)

    async def _send(self, url: str, token: str, params: dict[str, Any] | None, limit: int | None) -> Reply:
        self.calls += 1
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        cap = self.max_bytes if limit is None else max(min(self.max_bytes, limit), 0)
        try:
            async with self._session.get(
                url, params=params, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as reply:
                status, reply_headers = reply.status, reply.headers
                raw = await read_body(reply, cap)
        except BodyTooLarge:
            if cap < self.max_bytes:
                raise CxoneError(
                    f"GET {_shown(url)}: the pages add up to more than {self.max_fetch_bytes} bytes"
                ) from None
            raise CxoneError(f"GET {_shown(url)} sent more than {self.max_bytes} bytes", status) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CxoneError(f"GET {_shown(url)} failed: {type(exc).__name__}") from None
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                if status < 300:
                    raise CxoneError(f"GET {_shown(url)} sent a body that is not JSON", status) from None
        return Reply(status, reply_headers, body, len(raw))


def _shown(url: str) -> str:
    """Return the path of URL fit for logs (no host, no query string)."""
    return urlsplit(url).path[-120:]
