"""What central holds, for regional IT's commands and the export: dossiers, boxes, events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select

from edge.clock import iso
from edge.sync.central import storage as st
from edge.sync.central.core import Core
from edge.sync.central.downlink import Downlink


class Holdings:
    def __init__(self, core: Core, feed: Downlink) -> None:
        self.core = core
        self.feed = feed

    def list_dossiers(self) -> list[dict[str, Any]]:
        e = st.events.c
        d = st.dossiers.c
        k = st.keys.c
        events = (
            select(func.count())
            .where(and_(e.device_id == d.device_id, e.dossier_id == d.dossier_id))
            .scalar_subquery()
        )
        pages = (
            select(func.count())
            .where(
                and_(
                    e.device_id == d.device_id, e.dossier_id == d.dossier_id, e.type == "page.added"
                )
            )
            .scalar_subquery()
        )
        unreadable = (
            select(func.count())
            .where(
                and_(
                    e.device_id == d.device_id,
                    e.dossier_id == d.dossier_id,
                    ~select(k.key_id)
                    .where(and_(k.device_id == e.device_id, k.key_id == e.key_id))
                    .exists(),
                )
            )
            .scalar_subquery()
        )
        with self.core.tx() as conn:
            rows = conn.execute(
                select(
                    d.device_id,
                    d.dossier_id,
                    d.code,
                    d.status,
                    d.received_at,
                    d.central_status,
                    events.label("events"),
                    pages.label("pages"),
                    unreadable.label("unreadable"),
                ).order_by(d.received_at, d.device_id, d.dossier_id)
            ).all()
        return [
            {
                "device": r.device_id,
                "id": r.dossier_id,
                "code": r.code,
                "status": r.status,
                "pages": r.pages,
                "events": r.events,
                "received_at": r.received_at,
                "central_status": r.central_status,
                "readable": r.unreadable == 0,
            }
            for r in rows
        ]

    def devices_status(self) -> list[dict[str, Any]]:
        d = st.devices.c
        dl = st.downlink.c
        with self.core.tx() as conn:
            rows = conn.execute(select(st.devices).order_by(d.office, d.device_id)).all()
            result = []
            for r in rows:
                pending = conn.execute(
                    select(func.count()).where(
                        and_(dl.id > r.downlink_cursor, self.feed.targets(r.device_id, r.office))
                    )
                ).scalar_one()
                result.append(
                    {
                        "device": r.device_id,
                        "office": r.office,
                        "enrolled": iso(r.enrolled_ms),
                        "last_contact": iso(r.last_contact_ms) if r.last_contact_ms else None,
                        "last_seq": r.head_seq,
                        "pending_downlink": pending,
                        "software": r.software,
                        "revoked": bool(r.revoked),
                    }
                )
        return result

    def events_of(self, device_id: str) -> list[Any]:
        with self.core.tx() as conn:
            return list(
                conn.execute(
                    select(st.events)
                    .where(st.events.c.device_id == device_id)
                    .order_by(st.events.c.seq)
                ).all()
            )

    def key_wraps(self, device_id: str) -> dict[str, bytes]:
        with self.core.tx() as conn:
            return {
                r.key_id: bytes(r.wrapped)
                for r in conn.execute(select(st.keys).where(st.keys.c.device_id == device_id))
            }

    def dossier_rows(self, ident: str) -> list[Any]:
        d = st.dossiers.c
        with self.core.tx() as conn:
            return list(
                conn.execute(
                    select(st.dossiers).where(
                        or_(d.dossier_id == ident, d.code == ident.strip().upper())
                    )
                ).all()
            )
