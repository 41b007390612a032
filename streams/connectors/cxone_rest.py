"""The CXone REST client: bearer auth, one retry after a 401, and paging with ``top``/``skip``.

It retries nothing else by itself: a 429 or 5xx is raised as ``CxoneError``
with the server's Retry-After, and the poller decides when to call again
(its backoff and circuit breaker, see ``cxone_poller.py``). A 304 is an
answer, not an error: nothing changed since ``updatedSince``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from streams.connectors.cxone_auth import CxoneAuth, seconds
from streams.connectors.cxone_parsers import ParseError, parse_page
from streams.oauth import AuthFailed, TokenUnavailable

log = logging.getLogger(__name__)

EPOCH = "1970-01-01T00:00:00.000Z"  # updatedSince for "everything"
MAX_PAGES = 1000  # a server that keeps handing out next links must not keep us forever
MAX_REPLY_BYTES = 32 * 1024 * 1024


class CxoneError(Exception):
    """A CXone call failed (status, throttling, network, or an unusable reply)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        # What the server asked for (429/503 Retry-After): the poller and the base loop wait it out.
        self.retry_after = retry_after


@dataclass
class Fetched:
    """Every record of one real-time call (all pages), and the poll time to continue from."""

    items: list[dict[str, Any]] = field(default_factory=list)
    last_poll_time: str | None = None
    not_modified: bool = False
    pages: int = 0


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
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.auth = auth
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_bytes = max_bytes
        self.calls = 0
        self.not_modified = 0

    def url(self, path: str) -> str:
        """Return the absolute URL of PATH (a path under the API base, or a next link), refusing other hosts."""
        url = urljoin(self.api_base + "/", path.lstrip("/")) if not urlsplit(path).scheme else path
        if urlsplit(url).netloc.lower() != urlsplit(self.api_base).netloc.lower():
            # The token must never travel to a host a reply pointed at.
            raise CxoneError(f"refusing to follow a link to another host: {urlsplit(url).netloc[:80]}")
        return url

    async def get(self, url: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        """GET URL and return (status, JSON body); 304 comes back as (304, None); other errors raise."""
        retried = False
        while True:
            try:
                token = await self.auth.token()
            except TokenUnavailable as exc:
                raise CxoneError(str(exc), retry_after=exc.retry_after) from None
            status, headers, body = await self._send(url, token, params)
            if status == 401:
                await self.auth.invalidate(token)
                if retried:
                    raise AuthFailed(f"GET {_shown(url)} refused a fresh token (401)")
                retried = True
                continue
            if status == 304:
                self.not_modified += 1
                return 304, None
            if status >= 400:
                wait = seconds(headers.get("Retry-After"))
                raise CxoneError(f"GET {_shown(url)} answered {status} {_error(body)}".strip(), status, wait)
            return status, body

    async def fetch(self, path: str, root: str, since: str, *, top: int) -> Fetched:
        """Return every record under ROOT changed since SINCE, following ``_links.next`` through the pages.

        The poll time to continue from is the first page's: whatever changed
        while the later pages were read is asked for again next time.
        """
        fetched = Fetched()
        url: str | None = self.url(path)
        params: dict[str, Any] | None = {"updatedSince": since, "top": top, "skip": 0}
        seen: set[str] = set()
        while url is not None and fetched.pages < MAX_PAGES:
            status, body = await self.get(url, params)
            if status == 304:
                # Nothing (more) changed.
                fetched.not_modified = fetched.pages == 0
                return fetched
            fetched.pages += 1
            try:
                page = parse_page(body, root)
            except ParseError as exc:
                raise CxoneError(f"GET {path} sent an unusable reply: {exc}") from None
            fetched.items.extend(page.items)
            if fetched.pages == 1:
                fetched.last_poll_time = page.last_poll_time
            url, params = None, None
            if page.next_link is not None and page.items:
                link = self.url(page.next_link)
                if link not in seen:
                    seen.add(link)
                    url = link
        if url is not None:
            log.warning("GET %s: stopped after %d pages", path, MAX_PAGES)
        return fetched

    async def _send(self, url: str, token: str, params: dict[str, Any] | None) -> tuple[int, Any, Any]:
        self.calls += 1
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            async with self._session.get(url, params=params, headers=headers, timeout=self._timeout) as reply:
                raw = await reply.content.read(self.max_bytes + 1)
                status, reply_headers = reply.status, reply.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CxoneError(f"GET {_shown(url)} failed: {type(exc).__name__}") from None
        if len(raw) > self.max_bytes:
            raise CxoneError(f"GET {_shown(url)} sent more than {self.max_bytes} bytes", status)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                if status < 400:
                    raise CxoneError(f"GET {_shown(url)} sent a body that is not JSON", status) from None
        return status, reply_headers, body


def _shown(url: str) -> str:
    """Return the path of URL fit for logs (no host, no query string)."""
    return urlsplit(url).path[-120:]


def _error(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"][:60]
    return ""
