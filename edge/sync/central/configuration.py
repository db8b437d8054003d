"""Settings regional IT pushes to boxes (``edge central config``), and what a box starts with.

An office scope means here what it means for signed updates (edge.update.office_prefixes):
'H29' covers the office 'H29' and every office under it ('H29.01', 'H29-02'); no scope
covers every box. Where scopes disagree on a key, the more specific one wins, whatever
the order they were pushed in. Every push is kept (``config_pushes``); it reaches the
enrolled boxes it covers as downlink items addressed to their exact office, because a
box accepts an item only for its own office, and a box enrolled later gets the merged
settings in its enrollment answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from edge.settings import Settings
from edge.sync.central import storage as st
from edge.sync.central.codes import DossierCodes
from edge.sync.central.core import Core
from edge.sync.central.downlink import Downlink
from edge.sync.central.errors import NoBoxInScope
from edge.update import office_prefixes


def covers(scope: str, office: str) -> bool:
    """Whether settings pushed for ``scope`` ('' for every box) apply to ``office``."""
    return not scope or scope in office_prefixes(office)


@dataclass(frozen=True)
class Pushed:
    """What one push reached: enrolled boxes now, and keys a more specific scope keeps."""

    scope: str
    keys: list[str]
    boxes: int
    offices: int
    kept: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for regional IT."""
        where = f"office scope {self.scope}" if self.scope else "every box"
        line = f"queued settings {self.keys} for {where}: reaches {self.boxes} enrolled box(es)"
        if self.scope:
            line += f" in {self.offices} office(s) ({self.scope} and the offices under it)"
        elif not self.boxes:
            line += "; boxes get them when they enroll"
        if self.kept:
            kept = ", ".join(f"{office} ({', '.join(k)})" for office, k in self.kept.items())
            line += f"; kept by a more specific scope: {kept}"
        return line


class Configuration:
    def __init__(self, core: Core, feed: Downlink, codes: DossierCodes) -> None:
        self.core = core
        self.feed = feed
        self.codes = codes

    def configure(self, settings: dict[str, Any], office: str | None = None) -> Pushed:
        """Push settings (e.g. dossier-code patterns) to every box, or to an office scope.

        Refused (``NoBoxInScope``) when an office scope covers no enrolled box: most
        likely a mistyped code, and it would otherwise say "queued" and reach nobody.
        """
        checked = Settings().with_changes(**settings)
        checked.patterns()
        body = {k: v for k, v in checked.as_dict().items() if k in settings}
        scope = (office or "").strip().upper()
        with self.core.tx() as conn, st.lock_downlink(conn):
            # Under the lock, so a box enrolling now either is listed here or sees this
            # push in its enrollment answer (``effective_settings``).
            d = st.devices.c
            boxes = [
                r.office
                for r in conn.execute(select(d.office).where(d.revoked.is_(False)))
                if covers(scope, r.office)
            ]
            if scope and not boxes:
                raise NoBoxInScope(
                    f"no enrolled box is in office scope {scope} ({scope} and the offices "
                    "under it): check the office code ('edge central status'); nothing queued"
                )
            earlier = self._pushes(conn)
            conn.execute(
                st.config_pushes.insert().values(
                    scope=scope, settings=json.dumps(body), created_ms=self.core.now()
                )
            )
            kept: dict[str, list[str]] = {}
            for target in sorted(set(boxes)):
                keep = {
                    key
                    for other, values in earlier
                    if len(other) > len(scope) and covers(other, target)
                    for key in values
                    if key in body
                }
                if keep:
                    kept[target] = sorted(keep)
                items = {k: v for k, v in body.items() if k not in keep}
                if items:
                    self.feed.post(
                        conn, None, target, "config", {"settings": items, "scope": scope}
                    )
        self.codes.forget()
        return Pushed(scope, sorted(body), len(boxes), len(set(boxes)), kept)

    def effective_settings(self, conn: Connection, office: str) -> dict[str, Any]:
        """The settings a box of ``office`` should hold now: its scopes' pushes merged, the
        least specific first, so the more specific (then the later) push wins."""
        with st.lock_downlink(conn, shared=True):
            pushes = self._pushes(conn)
        merged: dict[str, Any] = {}
        applicable = [
            (len(scope), n) for n, (scope, _) in enumerate(pushes) if covers(scope, office)
        ]
        for _, n in sorted(applicable):
            merged.update(pushes[n][1])
        return merged

    def _pushes(self, conn: Connection) -> list[tuple[str, dict[str, Any]]]:
        p = st.config_pushes.c
        found = []
        for row in conn.execute(select(p.scope, p.settings).order_by(p.id)):
            settings = json.loads(row.settings)
            if isinstance(settings, dict):
                found.append((row.scope, settings))
        return found
