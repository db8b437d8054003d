"""Time on a box with no real-time clock.

After a power cut a Raspberry Pi may boot believing it is 1970 or last week, and a
bad NTP answer or a technician's typo can send it years ahead. Three different
questions are asked of time here, and each gets its own answer:

* **Order** (which event came first): a hybrid logical clock (HLC). It never goes
  back, so once something was recorded while the wall clock said 2031 the HLC stays
  at 2031 until real time passes it. That is right for order and wrong for anything
  else, so the HLC is never shown or used as a time: it goes in the event log's
  ``hlc`` column and in time-ordered ids.
* **What time it is** (``received_at``, an event's ``at``): the wall clock, kept no
  earlier than what the box knows for sure: the *time floor* (the newest trusted
  time ever seen: central's signed clock, signed metadata) plus the time the
  monotonic clock has counted since this process learnt it. A clock set back
  therefore keeps moving forward from the floor instead of standing still on it;
  a clock that ran ahead and came back is simply believed again.
* **How long since** (sign-in delays, expiry): the monotonic clock, which setting
  the wall clock does not move. It restarts at boot, so an ``Instant`` remembers
  which boot it was taken in; across a reboot the elapsed time is estimated from
  the time above, never below zero.

A wall clock behind the floor, or an order clock far ahead of the time, is reported
by ``edge doctor`` (``edge.doctor.check_clock``); it never stops the box.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic_ns

TOLERANCE_MS = 120_000
"""How far two clocks may disagree before it is called a jump (NTP slews, slow boots)."""

MAX_COUNTER = 99_999
"""The HLC counter's last value: it is written with five digits, so it never overflows them."""


def iso(ms: int) -> str:
    """Milliseconds since the epoch as an ISO-8601 UTC string."""
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def parse_iso(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _boot_id() -> str:
    """This boot's id: monotonic readings compare only within one boot.

    Without Linux's boot id, only readings of this very process compare.
    """
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text("ascii").strip()
    except OSError:
        return "process-" + secrets.token_hex(8)


BOOT = _boot_id()


def _system_wall() -> int:
    return int(time.time() * 1000)


def _system_monotonic() -> int:
    return monotonic_ns() // 1_000_000


@dataclass(frozen=True, order=True)
class Hlc:
    """A hybrid logical timestamp: physical milliseconds plus a counter. Order only."""

    ms: int
    counter: int = 0

    def __str__(self) -> str:
        return f"{self.ms:013d}.{self.counter:05d}"

    @classmethod
    def parse(cls, text: str) -> Hlc:
        ms, _, counter = text.partition(".")
        return cls(int(ms), int(counter or 0))


@dataclass(frozen=True)
class Instant:
    """A moment the box can later measure the time since, even if the wall clock moves.

    Stored as text (``str``/``parse``) where a duration must survive a restart: the
    sign-in guard keeps "2 s left as of this instant", never "until 10:42:07".
    """

    boot: str
    mono_ms: int
    time_ms: int

    def __str__(self) -> str:
        return f"{self.boot} {self.mono_ms} {self.time_ms}"

    @classmethod
    def parse(cls, text: str | None) -> Instant | None:
        try:
            boot, mono, at = (text or "").split(" ")
            return cls(boot, int(mono), int(at))
        except ValueError:
            return None


class Clock:
    """Issues order stamps (HLC), the time to record, and elapsed times.

    ``wall`` and ``monotonic`` return milliseconds; tests pass them. A clock given
    only ``wall`` is a simulated one in which the wall is all the time there is: it
    has no monotonic clock, so elapsed times come from its (never jumping) wall.
    """

    def __init__(
        self,
        floor_ms: int = 0,
        last: Hlc | None = None,
        wall: Callable[[], int] | None = None,
        monotonic: Callable[[], int] | None = None,
        boot: str | None = None,
    ) -> None:
        self.floor_ms = floor_ms
        self.last = last or Hlc(0)
        self._wall = wall or _system_wall
        if monotonic is None and wall is None:
            monotonic = _system_monotonic
        self._monotonic = monotonic
        self.boot = (boot or BOOT) if monotonic is not None else ""
        # The floor plus the monotonic time since this process knew it is a time that
        # has certainly been reached; it moves on when the wall clock is set back.
        self._floor_seen = (floor_ms, self._mono())

    def wall_ms(self) -> int:
        return self._wall()

    def _mono(self) -> int | None:
        return self._monotonic() if self._monotonic is not None else None

    def lower_bound_ms(self) -> int:
        """The earliest the time can be now: the floor, moved on by the monotonic clock."""
        floor, seen = self._floor_seen
        mono = self._mono()
        if mono is None or seen is None:
            return self.floor_ms
        return max(self.floor_ms, floor + max(0, mono - seen))

    def time_ms(self) -> int:
        """What time it is, to record and to show: the wall clock, never before the bound."""
        return max(self._wall(), self.lower_bound_ms())

    def tick(self) -> tuple[Hlc, int]:
        """An order stamp and the time, from one reading of the wall clock (an event's pair)."""
        at = self.time_ms()
        if at > self.last.ms:
            stamp = Hlc(at)
        elif self.last.counter < MAX_COUNTER:
            stamp = Hlc(self.last.ms, self.last.counter + 1)
        else:
            stamp = Hlc(self.last.ms + 1)
        self.last = stamp
        return stamp, at

    def now(self) -> Hlc:
        """The next order stamp: never behind the previous one or the floor."""
        return self.tick()[0]

    def observe(self, trusted_ms: int) -> None:
        """Raise the floor to a trusted time (central's clock, signed metadata)."""
        if trusted_ms > self.lower_bound_ms():
            self._floor_seen = (trusted_ms, self._mono())
        self.floor_ms = max(self.floor_ms, trusted_ms)

    def instant(self) -> Instant:
        """Now, in a form that can be stored and measured from later (``since_ms``)."""
        mono = self._mono()
        return Instant(self.boot, mono if mono is not None else 0, self.time_ms())

    def since_ms(self, then: Instant) -> int:
        """How long ago ``then`` was: by the monotonic clock within a boot, else estimated.

        Across a reboot the monotonic clock restarted, so the difference of the two
        times is taken, never negative: a clock set back (or a box that boots in 1970)
        does not lengthen a delay beyond what was left when it was stored.
        """
        mono = self._mono()
        if mono is not None and then.boot == self.boot and mono >= then.mono_ms:
            return mono - then.mono_ms
        return max(0, self.time_ms() - then.time_ms)

    def behind_floor_ms(self) -> int:
        """How far the wall clock is behind the floor (0 when it is not)."""
        return max(0, self.floor_ms - self._wall())

    def order_ahead_ms(self) -> int:
        """How far the order clock is ahead of the time: the mark a forward jump leaves.

        Everything recorded while the wall clock ran ahead carries the times it
        showed; the order stamps of what follows stay at least that far on.
        """
        return max(0, self.last.ms - self.time_ms())
