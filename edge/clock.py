"""Time on a box with no real-time clock.

After a power cut a Raspberry Pi may boot believing it is 1970 or last week.
So no record's time comes from the wall clock alone: a *time floor* (the newest
trusted time ever seen: central's time, signed metadata, the newest record) and a
hybrid logical clock (HLC) keep times moving forward. A wall clock behind the
floor is reported as a warning; it never stops the box.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime


def iso(ms: int) -> str:
    """Milliseconds since the epoch as an ISO-8601 UTC string."""
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def parse_iso(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass(frozen=True, order=True)
class Hlc:
    """A hybrid logical timestamp: physical milliseconds plus a counter."""

    ms: int
    counter: int = 0

    def __str__(self) -> str:
        return f"{self.ms:013d}.{self.counter:05d}"

    @classmethod
    def parse(cls, text: str) -> Hlc:
        ms, _, counter = text.partition(".")
        return cls(int(ms), int(counter or 0))


class Clock:
    """Issues HLC timestamps that never go behind the floor or backwards."""

    def __init__(self, floor_ms: int = 0, last: Hlc | None = None, wall=None) -> None:
        self.floor_ms = floor_ms
        self.last = last or Hlc(0)
        self._wall = wall or (lambda: int(time.time() * 1000))

    def wall_ms(self) -> int:
        return self._wall()

    def now(self) -> Hlc:
        physical = max(self._wall(), self.floor_ms)
        if physical > self.last.ms:
            stamp = Hlc(physical)
        else:
            stamp = Hlc(self.last.ms, self.last.counter + 1)
        self.last = stamp
        return stamp

    def observe(self, trusted_ms: int) -> None:
        """Raise the floor to a trusted time (central's clock, signed metadata)."""
        self.floor_ms = max(self.floor_ms, trusted_ms)

    def behind_floor_ms(self) -> int:
        """How far the wall clock is behind the floor (0 when it is not)."""
        return max(0, self.floor_ms - self._wall())
