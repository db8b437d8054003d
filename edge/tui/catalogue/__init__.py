"""The procedure catalogue (danh mục thủ tục hành chính) the dossier form picks from.

It is reference data, not code: regional IT replaces it with a signed update
(the "procedures" reference set); until then the small sample shipped here is
used. Codes are the national database's (``1.001193``); names are the
official Vietnamese names, shown as they are whatever the UI language.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge import text
from edge.store import Store

SHIPPED = Path(__file__).parent / "procedures.json"
UPDATED = Path("reference") / "procedures.json"


@dataclass(frozen=True)
class Procedure:
    code: str
    name: str
    field: str
    days: int
    folded: str

    def matches(self, query: str) -> bool:
        """Accent-insensitive: "dang ky khai sinh" finds "Đăng ký khai sinh"."""
        return all(word in self.folded for word in text.fold(query).split())


@dataclass(frozen=True)
class Catalogue:
    version: str
    procedures: tuple[Procedure, ...]

    def get(self, code: str) -> Procedure | None:
        code = code.strip().upper()
        return next((p for p in self.procedures if p.code == code), None)

    def codes(self) -> list[str]:
        return [p.code for p in self.procedures]

    def search(self, query: str) -> list[Procedure]:
        return [p for p in self.procedures if p.matches(query)]


def load(state: Path | None = None, store: Store | None = None) -> Catalogue:
    """The catalogue regional IT published when there is one, else the shipped sample.

    Published reference data arrives through signed updates into the store
    (``reference_data``, set "procedures"); a file ``<state>/reference/
    procedures.json`` is also honoured, for a box set up by hand.
    """
    data: Any = None
    if store is not None:
        try:
            row = store.conn.execute(
                "SELECT data FROM reference_data WHERE name = 'procedures'"
            ).fetchone()
        except sqlite3.OperationalError:  # a database from before signed updates
            row = None
        if row is not None:
            data = json.loads(row[0])
    if data is None and state is not None and (state / UPDATED).is_file():
        data = json.loads((state / UPDATED).read_text("utf-8"))
    if data is None:
        data = json.loads(SHIPPED.read_text("utf-8"))
    entries = data["procedures"] if isinstance(data, dict) else data
    items = []
    for entry in entries:
        code = str(entry["code"]).strip().upper()
        name = text.nfc(str(entry["name"]))
        items.append(
            Procedure(
                code,
                name,
                text.nfc(str(entry.get("field", ""))),
                int(entry.get("days", 0)),
                text.fold(f"{code} {name}"),
            )
        )
    items.sort(key=lambda p: text.sort_key(p.name))
    version = str(data.get("version", "")) if isinstance(data, dict) else ""
    return Catalogue(version, tuple(items))
