"""The Genesys REST client: bearer auth, the retry rules Genesys' own SDKs follow, and paging.

- 401: get a new token once and retry once; a second 401 is an auth failure.
- 429, 502, 503, 504: sleep ``Retry-After`` (3 s if absent) and retry, giving
  up when the server asks for more than 180 s or after a few attempts.
- Everything else >= 400 raises ``RestError`` at once.
- ``inin-ratelimit-*`` headers are kept; when the allowance is used up the
  next call waits for the window to reset instead of earning a 429.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from json import loads as _json_loads
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from streams.http_body import BodyTooLarge, read_body
from streams.oauth import AuthFailed, TokenProvider
from streams.retry_after import parse_retry_after

log = logging.getLogger(__name__)

# Query parameters: a mapping, or pairs when a name repeats (id=a&id=b).
Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None

# A channel id is all it takes to open its socket: keep it out of logs and error texts.
_CHANNEL_ID = re.compile(r"(/notifications/channels/)[^/?]+")

RETRYABLE = frozenset({429, 502, 503, 504})
MAX_PAGES = 1000  # a server that keeps handing out nextUri must not keep us forever
MAX_REPLY_BYTES = 32 * 1024 * 1024  # one reply: a page, or an analytics query's results


class RestError(Exception):
    """A REST call failed for good (or the vendor could not be reached)."""

    def __init__(
        self, message: str, status: int | None = None, code: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        # What the server asked for when this client gave up on a 429/5xx: the caller waits it out.
        self.retry_after = retry_after


class GenesysRest:
    """Call the Genesys API with a bearer token from TOKENS."""

    def __init__(
        self,
        api_base: str,
        tokens: TokenProvider,
        session: aiohttp.ClientSession,
        *,
        timeout: float = 30.0,
        max_retries: int = 5,
        default_retry_after: float = 3.0,
        max_retry_after: float = 180.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.max_bytes = max_bytes
        self.tokens = tokens
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_retries = max_retries
        self.default_retry_after = default_retry_after
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._clock = clock
        self.rate_limit: dict[str, float] = {}
        self._window_resets_at: float | None = None
        self.retries = 0  # retried responses (429/5xx), for the health page and tests
        self.calls = 0

    def url(self, path: str) -> str:
        """Return the absolute URL of PATH (a path or a nextUri), refusing other hosts."""
        url = urljoin(self.api_base + "/", path)
        if urlsplit(url).netloc != urlsplit(self.api_base).netloc:
            # The token must never travel to a host a reply pointed at.
            raise RestError(f"refusing to follow a link to another host: {urlsplit(url).netloc}")
        return url

    async def request(self, method: str, path: str, *, params: Params = None, json: Any = None) -> Any:
        """Send one call (retrying as the rules say) and return its JSON body (None when empty)."""
        url = self.url(path)
        auth_retried = False
        attempts = 0
        while True:
            await self._respect_rate_limit()
            token = await self.tokens.token()
            status, headers, body = await self._send(method, url, token, params, json)
            self._note_rate_limit(headers)
            if status == 401:
                await self.tokens.invalidate(token)
                if auth_retried:
                    raise AuthFailed(f"{method} {_shown(url)} refused a fresh token (401)")
                auth_retried = True
                continue
            if status in RETRYABLE:
                wait = parse_retry_after(headers.get("Retry-After"))
                wait = self.default_retry_after if wait is None else wait
                if wait > self.max_retry_after or attempts >= self.max_retries:
                    message = f"{method} {_shown(url)} answered {status}; giving up"
                    raise RestError(message, status, _code(body), retry_after=wait)
                attempts += 1
                self.retries += 1
                log.info("%s %s answered %s; retrying in %.1f s", method, _shown(url), status, wait)
                await self._sleep(wait)
                continue
            if status >= 400:
                code = _code(body)
                raise RestError(f"{method} {_shown(url)} answered {status} {code}".strip(), status, code)
            return body

    async def pages(self, path: str, params: Params = None) -> AsyncIterator[dict[str, Any]]:
        """Yield every page of a paged GET, following nextUri (or pageNumber up to pageCount)."""
        base = [(k, v) for k, v in _pairs(params) if k != "pageNumber"]
        number = next((int(v) for k, v in _pairs(params) if k == "pageNumber"), 1)
        next_path: str | None = path
        query: list[tuple[str, Any]] | None = [*base, ("pageNumber", number)]
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if next_path is None:
                return
            page = await self.request("GET", next_path, params=query)
            if not isinstance(page, dict):
                raise RestError(f"GET {path} sent a page that is not an object")
            yield page
            next_uri = page.get("nextUri")
            if isinstance(next_uri, str) and next_uri:
                if next_uri in seen:
                    return
                seen.add(next_uri)
                # The nextUri carries its own query string.
                next_path, query = next_uri, None
                continue
            current, count = page.get("pageNumber"), page.get("pageCount")
            if isinstance(current, int) and isinstance(count, int) and current < count:
                next_path, query = path, [*base, ("pageNumber", current + 1)]
                continue
            next_path = None
        log.warning("GET %s: stopped after %d pages", path, MAX_PAGES)

    async def _send(self, method: str, url: str, token: str, params: Params, json: Any) -> tuple[int, Any, Any]:
        self.calls += 1
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            async with self._session.request(
                method, url, params=params, json=json, headers=headers, timeout=self._timeout
            ) as response:
                status, reply_headers = response.status, response.headers
                raw = await read_body(response, self.max_bytes) if method != "HEAD" else b""
        except BodyTooLarge:
            raise RestError(f"{method} {_shown(url)} sent more than {self.max_bytes} bytes", status) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RestError(f"{method} {_shown(url)} failed: {type(exc).__name__}") from None
        body: Any = None
        if raw:
            try:
                body = _json_loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                if status < 400:
                    raise RestError(f"{method} {_shown(url)} sent a body that is not JSON", status) from None
        return status, reply_headers, body

    def _note_rate_limit(self, headers: Any) -> None:
        fresh = {name: _seconds(headers.get(f"inin-ratelimit-{name}")) for name in ("allowed", "count", "reset")}
        if all(value is None for value in fresh.values()):
            # A reply without the headers (a 401, a proxy's error) says nothing new; judging by the
            # last figures again would wait out a window that was already waited out.
            return
        self.rate_limit.update({name: value for name, value in fresh.items() if value is not None})
        allowed, count, reset = (self.rate_limit.get(k) for k in ("allowed", "count", "reset"))
        if allowed and count is not None and reset is not None and count >= allowed:
            self._window_resets_at = self._clock() + min(reset, self.max_retry_after)
        else:
            self._window_resets_at = None

    async def _respect_rate_limit(self) -> None:
        if self._window_resets_at is None:
            return
        wait = self._window_resets_at - self._clock()
        self._window_resets_at = None
        if wait > 0:
            log.info("rate-limit allowance used up; waiting %.1f s for the window to reset", wait)
            await self._sleep(wait)


def _shown(url: str) -> str:
    """Return the path of URL fit for logs: no query string, no channel id."""
    return _CHANNEL_ID.sub(r"\1{id}", urlsplit(url).path)


def _pairs(params: Params) -> list[tuple[str, Any]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return list(params.items())
    return list(params)


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def _code(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return body["code"][:100]
    return ""
