"""What a webhook delivery's body may hold: one JSON record, a list of them, or Amazon EventBridge envelopes.

``parse_body`` says why a body is refused (400, with that reason) without
echoing any part of it; ``hook_items`` turns the accepted items into what the
queue takes, each with its idempotency key.
"""

from __future__ import annotations

import json
from typing import Any

from streams.events import UNSET
from streams.feeds.mapping import FieldMapping
from streams.hooks.queue import HookItem

MAX_ID = 1000  # longer record ids are not ids (they would only fill the idempotency store)


class BodyError(ValueError):
    """A body that is not one record, a list of records or EventBridge envelopes (400 with this reason)."""


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_body(body: bytes) -> list[dict[str, Any]]:
    """Return the records (or EventBridge envelopes) of a delivery body; raise BodyError saying why not."""
    if not body.strip():
        raise BodyError("the body is empty")
    try:
        data = json.loads(body, parse_constant=_no_constants)
    except RecursionError:
        raise BodyError("the body is nested too deeply") from None
    except UnicodeDecodeError:
        raise BodyError("the body is not UTF-8 JSON") from None
    except ValueError as exc:
        # A JSONDecodeError says where, never what: no part of the body is echoed.
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise BodyError(f"the body is not valid JSON{where}") from None
    if isinstance(data, dict):
        items = [data]
    elif isinstance(data, list):
        items = data
    else:
        raise BodyError("the body must be a JSON object (one record) or a list of them")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BodyError(f"item {index} is not a JSON object")
        if is_envelope(item):
            detail = item.get("detail")
            if not isinstance(detail, dict) or not isinstance(detail.get("topicName"), str) or not detail["topicName"]:
                raise BodyError(f"item {index} is an EventBridge envelope without detail.topicName")
    return items


def is_envelope(item: dict[str, Any]) -> bool:
    """Return whether ITEM is an Amazon EventBridge envelope (rather than a record)."""
    return "detail-type" in item and "detail" in item


def record_id(item: dict[str, Any], mapping: FieldMapping) -> str | None:
    """Return ITEM's idempotency key: an envelope's ``id``, a record's mapped id; None if it has none."""
    value = item.get("id") if is_envelope(item) else mapping.get(item, "id")
    if value is UNSET or value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | str) and 0 < len(text := str(value)) <= MAX_ID:
        return text
    return None


def hook_items(items: list[dict[str, Any]], mapping: FieldMapping) -> list[HookItem]:
    """Return ITEMS as the queue takes them: compact JSON text and idempotency key."""
    return [HookItem(json.dumps(item, separators=(",", ":")), record_id(item, mapping)) for item in items]
