"""Faults injected on demand (through ``/simulator/control``) and consulted by the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class RestFault:
    """Answer the next COUNT REST calls under PATH with STATUS instead of serving them."""

    status: int
    remaining: int
    path: str = "/api/v2/"
    retry_after: int | None = None


class Faults:
    """The faults currently armed."""

    def __init__(self) -> None:
        self.rest: list[RestFault] = []
        self.injected = 0

    def add_rest_error(
        self, status: int, count: int = 1, path: str = "/api/v2/", retry_after: int | None = None
    ) -> None:
        """Arm a REST fault."""
        if not 400 <= status <= 599:
            raise ValueError("status must be a 4xx or 5xx code")
        if count < 1:
            raise ValueError("count must be at least 1")
        self.rest.append(RestFault(status, count, path, retry_after))

    def take_rest(self, path: str) -> RestFault | None:
        """Return the fault that applies to a call on PATH (using one of its count), or None."""
        for fault in self.rest:
            if path.startswith(fault.path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.rest.remove(fault)
                self.injected += 1
                return fault
        return None

    def clear(self) -> None:
        """Disarm every fault."""
        self.rest.clear()

    def describe(self) -> dict[str, Any]:
        """Return the armed faults as plain data."""
        return {
            "rest": [
                {"status": f.status, "remaining": f.remaining, "path": f.path, "retry_after": f.retry_after}
                for f in self.rest
            ],
            "injected": self.injected,
        }
