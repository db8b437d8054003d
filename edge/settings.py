"""The box's settings: defaults, and what regional IT may change.

Settings live in the database (table ``settings``) so a configuration update is
one transaction; this module only knows names, defaults and validation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from edge.domain import DEFAULT_CODE_PATTERNS, CodePatterns
from edge.errors import ConfigError
from edge.symbols import ReceiptRules


@dataclass(frozen=True)
class Settings:
    code_patterns: tuple[str, ...] = field(default_factory=lambda: tuple(DEFAULT_CODE_PATTERNS))
    # receipt QR codes that are portal URLs (edge/symbols): the query parameters that carry the
    # dossier code, tried in order, and the portal hosts ("*.gov.vn": the domain and its
    # subdomains)
    code_url_params: tuple[str, ...] = ("MHS",)
    portal_hosts: tuple[str, ...] = ("*.gov.vn",)
    settle_seconds: float = 5.0
    rescan_seconds: float = 30.0
    poll_seconds: float = 2.0
    use_polling: bool = False
    job_idle_seconds: float = 120.0
    min_free_mb: int = 500
    max_file_mb: int = 512
    max_pixels: int = 120_000_000
    min_dpi: float = 200.0
    max_skew_degrees: float = 3.0
    idle_lock_minutes: int = 5
    # signed updates (edge/update): where to look, how often, which mounts are sticks
    update_url: str = ""
    update_check_minutes: float = 360.0
    update_usb_roots: tuple[str, ...] = ("/media", "/run/media", "/mnt")
    # sync with central (edge/sync): how soon new records go up, how often the
    # downlink is polled when nothing is pending, and the longest backoff
    sync_interval_seconds: float = 10.0
    sync_poll_seconds: float = 300.0
    sync_backoff_max_seconds: float = 900.0
    # decoded image bytes capture may hold at once (edge/capture/readers.py); 0: a quarter
    # of the machine's memory, at most 200 MB. Larger pages are quarantined, not decoded.
    max_decode_mb: int = 0
    # scanning from the box (edge/capture/scanner.py): Decree 30/2020 asks for colour and at
    # least 200 dpi; 300 dpi keeps small print and receipt barcodes readable. Pages are saved
    # as baseline JPEG, which a PDF embeds as it is. scan_device "" takes the first scanner
    # found; scan_source is "adf" (the feeder) or "flatbed" (one page from the glass).
    scan_device: str = ""
    scan_source: str = "adf"
    scan_duplex: bool = False
    scan_dpi: int = 300
    scan_colour: bool = True
    # how often edge-scan-button.service asks a USB scanner whether its button was pressed
    scan_button_poll_seconds: float = 1.0
    # retention (edge/retention.py): a page's sealed bytes leave the box this many days after
    # central's receipt for its dossier and the dossier's completion (or hand-back), both;
    # metadata, events and the search index stay. Below purge_floor_mb free, pages central
    # holds go early, oldest first, and the box alarms when none can (intake stops at
    # min_free_mb).
    page_retention_days: int = 90
    purge_floor_mb: int = 2000

    @classmethod
    def from_mapping(
        cls, values: dict[str, Any], *, on_invalid: Callable[[ValueError], None] | None = None
    ) -> Settings:
        """Settings from stored or published values; ConfigError names the bad one.

        With ``on_invalid``, a bad value is reported there and its default used instead:
        the box reads its own stored settings that way, so a value an older release let
        through cannot stop the daemon from starting.
        """
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                continue
            default = getattr(cls(), name)
            try:
                kwargs[name] = _coerce(name, value, default)
            except ValueError as exc:
                if on_invalid is None:
                    raise
                on_invalid(exc)
        settings = cls(**kwargs)
        settings.patterns()
        settings.receipt_rules()
        return settings

    def with_changes(self, **changes: Any) -> Settings:
        checked = {k: _coerce(k, v, getattr(self, k)) for k, v in changes.items()}
        changed = replace(self, **checked)
        if _RECEIPT_FIELDS & checked.keys():
            changed.receipt_rules()
        return changed

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["code_patterns"] = list(self.code_patterns)
        return data

    def patterns(self) -> CodePatterns:
        return CodePatterns.from_config(list(self.code_patterns))

    def receipt_rules(self) -> ReceiptRules:
        """Where receipt URLs carry the dossier code; ValueError says which value to fix."""
        return ReceiptRules.from_config(self.code_url_params, self.portal_hosts)


_RECEIPT_FIELDS = frozenset({"code_url_params", "portal_hosts"})


# The range each number may take, inclusive. A value outside it is refused wherever a
# setting enters: signed by regional IT (edge admin config), pushed by central, applied
# by the box. NaN passed every comparison in the old code and stopped capture silently
# (settle_seconds=NaN never settles); a negative poll interval spins a core.
RANGES: dict[str, tuple[float, float]] = {
    "settle_seconds": (0.0, 3600.0),
    "rescan_seconds": (0.0, 86_400.0),
    "poll_seconds": (0.05, 3600.0),
    "job_idle_seconds": (0.0, 86_400.0),
    "min_free_mb": (0, 10**9),
    "max_file_mb": (1, 64 * 1024),
    "max_pixels": (1, 10**10),
    "min_dpi": (0.0, 4800.0),
    "max_skew_degrees": (0.0, 45.0),
    "idle_lock_minutes": (1, 24 * 60),
    "update_check_minutes": (1.0, 7 * 24 * 60.0),
    "sync_interval_seconds": (0.01, 86_400.0),
    "sync_poll_seconds": (0.05, 86_400.0),
    "sync_backoff_max_seconds": (0.1, 7 * 86_400.0),
    "max_decode_mb": (0, 64 * 1024),
    "scan_dpi": (200, 600),
    "scan_button_poll_seconds": (0.2, 60.0),
    "page_retention_days": (1, 3650),
    "purge_floor_mb": (0, 10**9),
}


def _coerce(name: str, value: Any, default: Any) -> Any:
    if isinstance(default, int | float) and not isinstance(default, bool):
        return _number(name, value, int if isinstance(default, int) else float)
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.strip().lower() in {"1", "true", "yes", "on"}
            return bool(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = [value]
            return tuple(str(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} cannot be {value!r}") from exc
    return value


def _number(name: str, value: Any, kind: type[int] | type[float]) -> int | float:
    """A finite number of the setting's kind within its range; ValueError names the range."""
    if isinstance(value, bool):
        raise ConfigError(f"setting {name!r} must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} must be a number, not {value!r}") from exc
    if not math.isfinite(number):
        raise ConfigError(f"setting {name!r} must be a finite number, not {value!r}")
    if kind is int:
        if number != int(number):
            raise ConfigError(f"setting {name!r} must be a whole number, not {value!r}")
        number = int(number)
    low, high = RANGES.get(name, (-math.inf, math.inf))
    if not low <= number <= high:
        raise ConfigError(f"setting {name!r} must be between {low:g} and {high:g}, not {value!r}")
    return kind(number)
