"""The downlink: a cursor-based feed of signed items for each box (statuses, configuration).

Items are signed when posted and never change; a box reads those after its cursor
that name it, its office or every box, and central notes how far it read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from edge.sync import contract as c
from edge.sync.central import storage as st
from edge.sync.central.core import Core
from edge.sync.central.errors import AdminError


class Downlink:
    def __init__(self, core: Core) -> None:
        self.core = core

    def targets(self, device_id: str, office: str) -> Any:
        d = st.downlink.c
        return or_(
            d.device_id == device_id,
            and_(d.device_id.is_(None), or_(d.office.is_(None), d.office == office)),
        )

    def downlink(
        self, conn: Connection, row: Any, after: int, limit: int, nonce: str
    ) -> c.DownlinkAnswer:
        if after > row.downlink_cursor:
            conn.execute(
                update(st.devices)
                .where(st.devices.c.device_id == row.device_id)
                .values(downlink_cursor=after)
            )
        head = c.Head(seq=row.head_seq, hash=row.head_hash)
        return self.downlink_items(conn, row.device_id, row.office, after, limit, nonce, head)

    def downlink_items(
        self,
        conn: Connection,
        device_id: str,
        office: str,
        after: int,
        limit: int,
        nonce: str,
        head: c.Head | None = None,
    ) -> c.DownlinkAnswer:
        rows = conn.execute(
            select(st.downlink.c.id, st.downlink.c.document, st.downlink.c.signature)
            .where(and_(st.downlink.c.id > after, self.targets(device_id, office)))
            .order_by(st.downlink.c.id)
            .limit(limit + 1)
        ).all()
        more = len(rows) > limit
        rows = rows[:limit]
        now = self.core.now()
        clock = c.sign_document(
            c.DOMAIN_CLOCK,
            c.Clock(v=c.PROTOCOL, device=device_id, nonce=nonce, server_time=now, head=head),
            self.core.keys.sign,
        )
        return c.DownlinkAnswer(
            items=[
                c.DownlinkItem(
                    id=r.id, document=c.SignedDocument(signed=r.document, signature=r.signature)
                )
                for r in rows
            ],
            next=rows[-1].id if rows else after,
            more=more,
            clock=clock,
            server_time=now,
            updates=self.core.gate.served_version(),
        )

    def post(
        self,
        conn: Connection,
        device_id: str | None,
        office: str | None,
        kind: str,
        body: dict[str, Any],
    ) -> int:
        with st.lock_downlink(conn):
            now = self.core.now()
            new_id = conn.execute(
                st.downlink.insert()
                .values(
                    device_id=device_id,
                    office=office,
                    kind=kind,
                    document="",
                    signature="",
                    created_ms=now,
                )
                .returning(st.downlink.c.id)
            ).scalar_one()
            doc = c.sign_document(
                c.DOMAIN_DOWNLINK,
                c.DownlinkDoc(
                    v=c.PROTOCOL,
                    id=new_id,
                    device=device_id,
                    office=office,
                    kind=kind,
                    body=body,
                    at=now,
                ),
                self.core.keys.sign,
            )
            conn.execute(
                update(st.downlink)
                .where(st.downlink.c.id == new_id)
                .values(document=doc.signed, signature=doc.signature)
            )
        return int(new_id)

    def notify(
        self, code: str, status: int, note: str = "", appointment: str | None = None
    ) -> list[int]:
        """Tell the box(es) holding a dossier its portal status (1–10).

        ``appointment`` is the agency's return date (dd/mm/yyyy or yyyy-mm-dd), sent with
        the status as ``YYYY-MM-DD``: on the box it replaces the date the desk computed.
        Raises ``AdminError`` for a status or a date that is not one, and for a code
        central does not hold.
        """
        from datetime import date, datetime

        if not 1 <= status <= 10:
            raise AdminError("a portal status is a number from 1 to 10 (DESIGN.md section 9)")
        body: dict[str, Any] = {}
        if appointment is not None and appointment.strip():
            text = appointment.strip()
            try:
                if "/" in text:
                    day = datetime.strptime(text, "%d/%m/%Y").date()
                else:
                    day = date.fromisoformat(text)
            except ValueError:
                raise AdminError(
                    f"the return date {text!r} is not a date: write it as dd/mm/yyyy "
                    "or yyyy-mm-dd, e.g. 04/12/2026"
                ) from None
            body["appointment"] = day.isoformat()
        code = code.strip().upper()
        with self.core.tx() as conn:
            owner = conn.execute(
                select(st.dossier_codes.c.office).where(st.dossier_codes.c.code == code)
            ).scalar()
            query = (
                select(st.dossiers.c.device_id, st.dossiers.c.dossier_id)
                .join(st.devices, st.devices.c.device_id == st.dossiers.c.device_id)
                .where(st.dossiers.c.code == code)
            )
            if owner is not None:
                # only the owning office's boxes: a box elsewhere that named the code
                # (before central refused such claims) gets nothing about it
                query = query.where(st.devices.c.office == owner)
            holders = conn.execute(query).all()
            if not holders:
                raise AdminError(f"central holds no dossier with code {code}: check the code")
            ids = []
            for holder in holders:
                ids.append(
                    self.post(
                        conn,
                        holder.device_id,
                        None,
                        "status",
                        {
                            "code": code,
                            "dossier_id": holder.dossier_id,
                            "status": status,
                            "note": note,
                            **body,
                        },
                    )
                )
                conn.execute(
                    update(st.dossiers)
                    .where(
                        and_(
                            st.dossiers.c.device_id == holder.device_id,
                            st.dossiers.c.dossier_id == holder.dossier_id,
                        )
                    )
                    .values(central_status=status)
                )
        return ids
