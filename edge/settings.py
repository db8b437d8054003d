"""The box's settings: defaults, and what regional IT may change.

Settings live in the database (table ``settings``) so a configuration update is
one transaction; this module only knows names, defaults and validation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from edge.domain import DEFAULT_CODE_PATTERNS, CodePatterns
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

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Settings:
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                continue
            default = getattr(cls(), name)
            kwargs[name] = _coerce(name, value, default)
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


def _coerce(name: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.strip().lower() in {"1", "true", "yes", "on"}
            return bool(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = [value]
            return tuple(str(v) for v in value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"setting {name!r} cannot be {value!r}") from exc
    return value
