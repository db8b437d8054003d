"""Central's fleet view for regional IT, and the signed health report that feeds it.

Boxes sit behind carrier NAT, so central never asks them anything: each sync round
ends with ``POST /v1/device/health`` (the box's ``health_summary``, signed like every
other request), and central keeps the newest one per device beside the last-contact
time that every signed request already updates. ``GET /fleet`` renders that as one
server-side HTML page (no scripts, no external assets, readable on a phone) and
``GET /fleet.json`` gives tools the same rows.

A box whose clerk has covers to check (``open_reviews``: capture could not confirm the
code, so the pages wait in a dossier flagged for review) shows how many; it is flagged
with the other alerting boxes only once the oldest has waited over a day, which the box
itself judges and says with its ``review`` alert (``REVIEW_OVERDUE_SECONDS``): covers
checked later the same day are the normal rhythm of a desk, not something for regional
IT. Summaries from boxes older than the field show nothing there.

A box is *silent* when central has heard nothing signed from it for longer than
``edge central serve --silent-after MINUTES``; silent boxes sort first because they
are the ones someone may have to drive to.

The province of a box is the first segment of its office code (``H29`` for
``H29.01``), the same rule the signed update delegations use; ``provinces.json`` in
central's data folder may map codes to names, since province codes changed with the
2025 reorganisation and must stay data.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio.to_thread
import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Controller, get, post
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, QueryParameter
from litestar.plugins import InitPluginProtocol
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig
from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from tuf.api.serialization import DeserializationError

from edge.clock import iso
from edge.observe.health import REVIEW_ALERT
from edge.sync import contract as c
from edge.sync.central import storage as st
from edge.sync.central.errors import AdminError
from edge.sync.central.http import COMMON, SIGNED, verified_request
from edge.sync.central.receiver import Central, Verified
from edge.update import office_prefixes
from edge.update.expiry import served_root_expiry

log = logging.getLogger("edge.central")

SILENT_AFTER_MINUTES = 60.0
TEMPLATES = Path(__file__).with_name("templates")
PROVINCE_NAMES = "provinces.json"
CLOCK_SKEW_SECONDS = 300.0
# Vietnam keeps UTC+7 all year (no daylight saving), so a fixed offset needs no tz database.
VIETNAM = timezone(timedelta(hours=7))

# No script may run and nothing may load from elsewhere: box-supplied text (alerts)
# is escaped by Jinja, and this header is the second wall if that ever slipped.
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Province = Annotated[
    str | None,
    QueryParameter(
        required=False,
        max_length=32,
        description="only boxes of this province (office-code prefix, e.g. H29)",
    ),
]


# -- the box's report ------------------------------------------------------------------


def record_health(
    conn: Connection, device_id: str, report: c.HealthReport, now: int
) -> c.HealthAnswer:
    """Keep only the newest summary per device, in the request's own transaction."""
    if report.v != c.PROTOCOL:
        raise c.ProblemError(c.Code.MALFORMED, f"health report version {report.v} is unknown")
    insert = (pg_dialect if st.is_postgres(conn) else sqlite_dialect).insert(st.device_health)
    text = msgspec.json.encode(report.summary).decode("utf-8")
    conn.execute(
        insert.values(device_id=device_id, received_ms=now, summary=text).on_conflict_do_update(
            index_elements=["device_id"], set_={"received_ms": now, "summary": text}
        )
    )
    return c.HealthAnswer(received_at=now, server_time=now)


class HealthController(Controller):
    path = c.API
    dependencies = {  # noqa: RUF012 (Litestar's Controller declares it an instance variable)
        "verified": Provide(verified_request)
    }

    @post(
        "/device/health",
        responses=SIGNED,
        status_code=200,
        request_max_body_size=c.MAX_HEALTH_BYTES,
    )
    async def report_health(
        self,
        central: NamedDependency[Central],
        data: JSONBody[c.HealthReport],
        verified: NamedDependency[Verified],
    ) -> c.HealthAnswer:
        """The box's health summary, sent at the end of every sync round for the fleet page."""
        return await anyio.to_thread.run_sync(
            lambda: central.handle(
                verified,
                lambda conn, row: record_health(conn, row.device_id, data, row.last_contact_ms),
            )
        )


# -- the fleet -------------------------------------------------------------------------


class FleetBox(msgspec.Struct):
    """One box as the fleet page shows it; ``health`` is its newest summary as sent."""

    device: str
    office: str
    province: str
    province_name: str | None
    version: str
    enrolled: str
    last_contact: str | None
    last_contact_ms: int | None
    silent: bool
    silent_minutes: int | None
    revoked: bool
    reported_at: str | None
    outbox_dossiers: int | None
    outbox_events: int | None
    outbox_bytes: int | None
    disk_free_bytes: int | None
    disk_total_bytes: int | None
    disk_low: bool
    clock_skew_seconds: float | None
    quarantine: int | None
    open_reviews: int | None
    reviews_overdue: bool
    last_capture: str | None
    last_sync: str | None
    alerts: dict[str, str]
    health: c.HealthSummary | None


class ProvinceCount(msgspec.Struct):
    code: str
    name: str | None
    boxes: int
    silent: int


class UpdateRoot(msgspec.Struct):
    """The update root central serves: when it runs out, every box refuses every update."""

    version: int
    expires: str
    days_left: int
    expired: bool
    warning: str | None


class FleetAnswer(msgspec.Struct):
    generated_at: str
    server_time: int
    silent_after_minutes: float
    province: str | None
    provinces: list[ProvinceCount]
    total: int
    silent: int
    alerting: int
    boxes: list[FleetBox]
    update_root: UpdateRoot | None = None


def province_of(office: str) -> str:
    return office_prefixes(office)[0] if office else ""


def province_names(data: Path) -> dict[str, str]:
    """Optional ``provinces.json`` (``{"H29": "Hà Nội"}``); a broken file only loses names."""
    path = data / PROVINCE_NAMES
    try:
        names = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return {}
    if not isinstance(names, dict):
        return {}
    return {str(k).upper(): str(v) for k, v in names.items()}


def _summary(text: str | None) -> c.HealthSummary | None:
    if not text:
        return None
    try:
        return msgspec.json.decode(text.encode("utf-8"), type=c.HealthSummary)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _box(row: Any, names: dict[str, str], now: int, silent_after_ms: int) -> FleetBox:
    health = _summary(row.summary)
    province = province_of(row.office)
    contact = row.last_contact_ms
    silent = not row.revoked and (contact is None or now - contact > silent_after_ms)
    disk = health.disk if health else None
    disk_low = bool(
        disk
        and disk.free_bytes is not None
        and disk.min_free_bytes is not None
        and disk.free_bytes < disk.min_free_bytes
    )
    skew: float | None = None
    if health is not None:
        offset = health.clock.central_offset_seconds
        behind = health.clock.behind_floor_seconds
        worst = max(abs(offset) if offset is not None else 0.0, behind)
        skew = worst if worst > CLOCK_SKEW_SECONDS else None
    software = row.software.removeprefix("commune-edge ").strip()
    return FleetBox(
        device=row.device_id,
        office=row.office,
        province=province,
        province_name=names.get(province),
        version=(health.version if health and health.version else software) or "?",
        enrolled=iso(row.enrolled_ms),
        last_contact=iso(contact) if contact is not None else None,
        last_contact_ms=contact,
        silent=silent,
        silent_minutes=max(0, (now - contact) // 60_000) if contact is not None else None,
        revoked=bool(row.revoked),
        reported_at=iso(row.received_ms) if row.received_ms is not None else None,
        outbox_dossiers=health.outbox.dossiers if health else None,
        outbox_events=health.outbox.events if health else None,
        outbox_bytes=health.outbox.bytes if health else None,
        disk_free_bytes=disk.free_bytes if disk else None,
        disk_total_bytes=disk.total_bytes if disk else None,
        disk_low=disk_low,
        clock_skew_seconds=skew,
        quarantine=health.quarantine.get("held", 0) if health else None,
        open_reviews=health.open_reviews if health else None,
        reviews_overdue=bool(health and REVIEW_ALERT in health.alerts),
        last_capture=health.last_capture if health else None,
        last_sync=health.sync.last_ok if health else None,
        alerts=dict(health.alerts) if health else {},
        health=health,
    )


def _alerting(box: FleetBox) -> bool:
    return bool(box.alerts or box.disk_low or box.clock_skew_seconds)


def _order(box: FleetBox) -> tuple[Any, ...]:
    """Silent boxes first, longest silence first; then boxes with alerts; revoked last."""
    if box.revoked:
        return (3, box.province, box.office, box.device)
    if box.silent:
        return (0, box.last_contact or "", box.office, box.device)
    return (1 if _alerting(box) else 2, box.province, box.office, box.device)


def fleet(
    central: Central, province: str | None, silent_after_minutes: float, now: int | None = None
) -> FleetAnswer:
    """Every enrolled box with its newest health, filtered to one province when asked."""
    now = central.now() if now is None else now
    silent_after_ms = int(silent_after_minutes * 60_000)
    names = province_names(central.data)
    d = st.devices.c
    h = st.device_health.c
    query = select(
        d.device_id,
        d.office,
        d.enrolled_ms,
        d.last_contact_ms,
        d.software,
        d.revoked,
        h.received_ms,
        h.summary,
    ).select_from(st.devices.outerjoin(st.device_health, h.device_id == d.device_id))
    with central.engine.begin() as conn:
        rows = conn.execute(query).all()
    boxes = [_box(row, names, now, silent_after_ms) for row in rows]
    counts: dict[str, list[int]] = {}
    for box in boxes:
        tally = counts.setdefault(box.province, [0, 0])
        tally[0] += 1
        tally[1] += box.silent
    wanted = (province or "").strip().upper() or None
    if wanted is not None:
        boxes = [box for box in boxes if box.province == wanted]
    boxes.sort(key=_order)
    return FleetAnswer(
        generated_at=iso(now),
        server_time=now,
        silent_after_minutes=silent_after_minutes,
        province=wanted,
        provinces=[
            ProvinceCount(code=code, name=names.get(code), boxes=n, silent=quiet)
            for code, (n, quiet) in sorted(counts.items())
        ],
        total=len(boxes),
        silent=sum(box.silent for box in boxes),
        alerting=sum(_alerting(box) for box in boxes),
        boxes=boxes,
        update_root=_update_root(central.data, now),
    )


def _update_root(data: Path, now: int) -> UpdateRoot | None:
    """The served root's expiry; None before anything was published or if it cannot be read
    (the page is for finding silent boxes and must not fail on the update folder)."""
    try:
        expiry = served_root_expiry(data, datetime.fromtimestamp(now / 1000, UTC))
    except (OSError, ValueError, DeserializationError) as exc:
        log.warning("cannot read the served update root: %s", exc)
        return None
    if expiry is None:
        return None
    stamp = iso(int(expiry.expires.timestamp() * 1000))
    return UpdateRoot(expiry.version, stamp, expiry.days_left, expiry.expired, expiry.warning)


# -- the page ----------------------------------------------------------------------------

TEXT: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Tình trạng máy các bưu cục",
        "updated": "Cập nhật lúc",
        "silent_rule": "Máy không liên lạc quá {minutes} phút được đánh dấu im lặng.",
        "boxes": "máy",
        "silent_boxes": "im lặng",
        "alerting_boxes": "có cảnh báo",
        "province": "Tỉnh/thành",
        "all_provinces": "Tất cả tỉnh/thành",
        "filter": "Lọc",
        "office": "Bưu cục",
        "version": "Phiên bản",
        "last_contact": "Liên lạc cuối",
        "outbox": "Chờ gửi",
        "disk": "Đĩa trống",
        "alerts": "Cảnh báo",
        "silent": "IM LẶNG",
        "revoked": "ĐÃ THU HỒI",
        "never": "chưa bao giờ",
        "no_report": "chưa có báo cáo",
        "nothing": "không",
        "dossiers": "hồ sơ",
        "events": "sự kiện",
        "disk_low": "Sắp hết đĩa",
        "clock_skew": "Đồng hồ lệch {minutes} phút",
        "quarantine": "{n} tệp cách ly",
        "reviews": "{n} hồ sơ chờ kiểm tra bìa",
        "reviews_overdue": "{n} hồ sơ chờ kiểm tra bìa (lâu nhất quá 1 ngày)",
        "empty": "Không có máy nào.",
        "root_expires": (
            "Khóa gốc cập nhật (root v{version}) hết hạn ngày {date}, còn {days} ngày: những "
            "người giữ khóa gốc phải ký root mới trước ngày đó, nếu không mọi máy sẽ từ chối "
            "mọi bản cập nhật (docs/updates.md)."
        ),
        "root_expired": (
            "Khóa gốc cập nhật (root v{version}) đã hết hạn ngày {date}: mọi máy đang từ chối "
            "mọi bản cập nhật cho đến khi những người giữ khóa gốc ký root mới (docs/updates.md)."
        ),
        "minutes_ago": "{n} phút trước",
        "hours_ago": "{n} giờ trước",
        "days_ago": "{n} ngày trước",
        "just_now": "vừa xong",
        "other_lang": "English",
        "json": "JSON",
    },
    "en": {
        "title": "Commune Edge fleet",
        "updated": "Updated",
        "silent_rule": "Boxes not heard from for over {minutes} minutes are marked silent.",
        "boxes": "boxes",
        "silent_boxes": "silent",
        "alerting_boxes": "with alerts",
        "province": "Province",
        "all_provinces": "All provinces",
        "filter": "Filter",
        "office": "Office",
        "version": "Version",
        "last_contact": "Last contact",
        "outbox": "Outbox",
        "disk": "Disk free",
        "alerts": "Alerts",
        "silent": "SILENT",
        "revoked": "REVOKED",
        "never": "never",
        "no_report": "no report yet",
        "nothing": "none",
        "dossiers": "dossiers",
        "events": "events",
        "disk_low": "Disk nearly full",
        "clock_skew": "Clock off by {minutes} min",
        "quarantine": "{n} quarantined",
        "reviews": "{n} cover(s) for the clerk to check",
        "reviews_overdue": "{n} cover(s) for the clerk to check (oldest over a day)",
        "empty": "No boxes.",
        "root_expires": (
            "The update root (root v{version}) expires on {date}, in {days} day(s): the root key "
            "custodians must sign a new root before then, or every box refuses every update "
            "(docs/updates.md)."
        ),
        "root_expired": (
            "The update root (root v{version}) expired on {date}: every box refuses every update "
            "until the root key custodians sign a new root (docs/updates.md)."
        ),
        "minutes_ago": "{n} min ago",
        "hours_ago": "{n} h ago",
        "days_ago": "{n} days ago",
        "just_now": "just now",
        "other_lang": "Tiếng Việt",
        "json": "JSON",
    },
}


def _number(value: float, lang: str, digits: int = 1) -> str:
    text = f"{value:,.{digits}f}" if digits else f"{value:,.0f}"
    if lang == "vi":  # Vietnamese groups with dots and writes a decimal comma
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def _size(n: int | None, lang: str) -> str:
    if n is None:
        return "–"
    units = ("B", "KB", "MB", "GB", "TB")
    value = float(n)
    unit = 0
    while value >= 1000 and unit < len(units) - 1:
        value /= 1000
        unit += 1
    return f"{_number(value, lang, 0 if unit == 0 else 1)} {units[unit]}"


def _local(ms: int) -> str:
    """Regional IT reads times in Vietnam's own clock, day first."""
    return datetime.fromtimestamp(ms / 1000, VIETNAM).strftime("%H:%M %d/%m/%Y")


def _ago(minutes: int | None, t: dict[str, str]) -> str:
    if minutes is None:
        return t["never"]
    if minutes < 1:
        return t["just_now"]
    if minutes < 120:
        return t["minutes_ago"].format(n=minutes)
    if minutes < 48 * 60:
        return t["hours_ago"].format(n=minutes // 60)
    return t["days_ago"].format(n=minutes // (24 * 60))


def _row(box: FleetBox, lang: str, t: dict[str, str]) -> dict[str, Any]:
    """Display strings for one box, so the template holds layout only."""
    # The box's own disk and review alerts get the page's wording; others are shown as sent.
    overdue = box.reviews_overdue and bool(box.open_reviews)
    alerts = [
        f"{t['disk_low']} ({text})" if name == "disk" else f"{name}: {text}"
        for name, text in sorted(box.alerts.items())
        if not (name == REVIEW_ALERT and overdue)
    ]
    if box.disk_low and "disk" not in box.alerts:
        alerts.insert(0, t["disk_low"])
    if box.clock_skew_seconds:
        alerts.append(t["clock_skew"].format(minutes=round(box.clock_skew_seconds / 60)))
    if box.quarantine:
        alerts.append(t["quarantine"].format(n=box.quarantine))
    if box.open_reviews:
        alerts.append(t["reviews_overdue" if overdue else "reviews"].format(n=box.open_reviews))
    if box.health is None:
        outbox = t["no_report"]
        disk = "–"
    else:
        outbox = (
            f"{box.outbox_dossiers} {t['dossiers']} · {box.outbox_events} {t['events']}"
            f" · {_size(box.outbox_bytes, lang)}"
        )
        disk = _size(box.disk_free_bytes, lang)
        if box.disk_free_bytes is not None and box.disk_total_bytes:
            share = 100 * box.disk_free_bytes / box.disk_total_bytes
            disk += f" ({_number(share, lang, 1 if share < 10 else 0)}%)"
    return {
        "device": box.device,
        "office": box.office,
        "province": box.province,
        "province_label": f"{box.province} · {box.province_name}"
        if box.province_name
        else box.province,
        "version": box.version,
        "silent": box.silent,
        "revoked": box.revoked,
        "alerting": _alerting(box),
        "disk_low": box.disk_low,
        "last_contact": _local(box.last_contact_ms) if box.last_contact_ms else "",
        "contact_ago": _ago(box.silent_minutes, t),
        "outbox": outbox,
        "disk": disk,
        "alerts": alerts,
    }


def page_context(answer: FleetAnswer, lang: str) -> dict[str, Any]:
    t = TEXT[lang]
    other = "vi" if lang == "en" else "en"
    query = {"province": answer.province} if answer.province else {}
    provinces = list(answer.provinces)
    if answer.province and answer.province not in {p.code for p in provinces}:
        # A stale link to a province with no boxes left: keep the filter visible.
        provinces.append(ProvinceCount(code=answer.province, name=None, boxes=0, silent=0))
    return {
        "lang": lang,
        "t": t,
        "answer": answer,
        "generated": _local(answer.server_time) + " (UTC+7)",
        "silent_rule": t["silent_rule"].format(
            minutes=_number(answer.silent_after_minutes, lang, 0)
        ),
        "rows": [_row(box, lang, t) for box in answer.boxes],
        "provinces": [
            {
                "code": p.code,
                "label": f"{p.code} · {p.name}" if p.name else p.code,
                "boxes": p.boxes,
                "silent": p.silent,
                "selected": p.code == answer.province,
            }
            for p in provinces
        ],
        "other_lang_url": "/fleet?" + urlencode({**query, "lang": other}),
        "json_url": "/fleet.json" + ("?" + urlencode(query) if query else ""),
        "root_banner": _root_banner(answer.update_root, t),
    }


def _root_banner(root: UpdateRoot | None, t: dict[str, str]) -> str | None:
    if root is None or root.warning is None:
        return None
    date = datetime.fromisoformat(root.expires).astimezone(VIETNAM).strftime("%d/%m/%Y")
    key = "root_expired" if root.expired else "root_expires"
    return t[key].format(version=root.version, date=date, days=max(root.days_left, 0))


@dataclass(frozen=True)
class FleetSettings:
    silent_after_minutes: float = SILENT_AFTER_MINUTES


class FleetController(Controller):
    """Unsigned on purpose, like ``/schema``: central has no logins of its own, so the
    deployment keeps these pages to regional IT's network (docs/operations.md)."""

    path = "/"

    @get("/fleet.json", responses=COMMON)
    async def fleet_json(
        self,
        central: NamedDependency[Central],
        fleet_settings: NamedDependency[FleetSettings],
        province: Province = None,
    ) -> FleetAnswer:
        """Every box, its last contact and newest health summary; silent boxes first."""
        return await anyio.to_thread.run_sync(
            lambda: fleet(central, province, fleet_settings.silent_after_minutes)
        )

    @get("/fleet", responses=COMMON, media_type="text/html")
    async def fleet_page(
        self,
        central: NamedDependency[Central],
        fleet_settings: NamedDependency[FleetSettings],
        province: Province = None,
        lang: Annotated[
            str | None,
            QueryParameter(required=False, max_length=8, description="vi (default) or en"),
        ] = None,
    ) -> Template:
        """The same as /fleet.json as a page for a phone or a desk: filter by province."""
        answer = await anyio.to_thread.run_sync(
            lambda: fleet(central, province, fleet_settings.silent_after_minutes)
        )
        language = "en" if lang == "en" else "vi"
        return Template(
            template_name="fleet.html",
            context=page_context(answer, language),
            headers=HTML_HEADERS,
            media_type="text/html",
        )


def template_environment() -> Environment:
    """The page's templates: escaped, and a missing value is an error, not an empty cell."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class FleetPlugin(InitPluginProtocol):
    """Adds the health report, the fleet routes and their templates to central's app."""

    def __init__(self, silent_after_minutes: float | None = None) -> None:
        minutes = SILENT_AFTER_MINUTES if silent_after_minutes is None else silent_after_minutes
        if not minutes > 0:
            raise AdminError("--silent-after is a number of minutes above zero: give e.g. 90")
        self.settings = FleetSettings(minutes)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend([HealthController, FleetController])
        app_config.dependencies["fleet_settings"] = Provide(
            lambda: self.settings, use_cache=True, sync_to_thread=False
        )
        app_config.template_config = TemplateConfig(
            instance=JinjaTemplateEngine(engine_instance=template_environment())
        )
        return app_config
