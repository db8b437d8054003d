"""Finding a dossier by code, CCCD, phone or name, for the signed-in clerk.

Codes by their trigram index (``LIKE`` for fewer than three characters), CCCD
and phone numbers by their blind-index terms, names by the blind-index terms of
every typed word (prefixes are indexed, so "ngu" finds Nguyễn), intersected.
Names are sealed, so ordering by Vietnamese collation opens them: at most the
newest ``limit`` matches, and the total says when there are more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from edge import text
from edge.desk.details import clean_phone
from edge.desk.statuses import MERGED
from edge.records import Reader
from edge.vault import field_ad, json_object


@dataclass(frozen=True)
class Found:
    dossier_id: str
    code: str | None
    status: str
    received_at: str
    name: str
    family: str = ""
    middle: str = ""
    given: str = ""


@dataclass
class SearchResult:
    total: int
    rows: list[Found] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.rows)


_CODE_CHARS = re.compile(r"[0-9.\-]")


class Search(Reader):
    def find(self, query: str, limit: int = 100) -> SearchResult:
        """Dossiers matching a code, CCCD, phone or name, in Vietnamese name order.

        Each kind of match is a subquery (``Store.search_dossiers``), combined and
        counted in SQLite. Names are sealed, so ordering them means opening them:
        the newest ``limit`` matches are opened and ordered, and the total tells the
        clerk to type more when there are more.
        """
        query = text.nfc(query).strip()
        if not query:
            return SearchResult(0)
        code_trigram = code_like = None
        number_terms: list[str] = []
        name_terms: list[str] = []
        compact = query.replace(" ", "").replace(".", "")
        number = compact.isdigit() and len(compact) >= 9
        if _CODE_CHARS.search(query) and not number:
            needle = query.upper()
            if len(needle) >= 3:
                code_trigram = '"' + needle.replace('"', '""') + '"'
            else:
                escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                code_like = f"%{escaped}%"
        if number:
            digits = clean_phone(compact) if len(compact) < 12 else compact
            number_terms = self.session.blind_terms([compact], "cccd")
            number_terms += self.session.blind_terms(sorted({digits, compact}), "phone")
        tokens = [t for t in text.search_tokens(query) if not t.isdigit()]
        if tokens:
            name_terms = sorted(
                self.session.blind_terms(tokens, "name"), key=self.store.blind_term_count
            )
        total, newest = self.store.search_dossiers(
            code_trigram=code_trigram,
            code_like=code_like,
            number_terms=number_terms,
            name_terms=name_terms,
            limit=limit,
        )
        if not total:
            return SearchResult(0)
        rows = [r for r in self.store.dossier_summaries(newest) if r["status"] != MERGED]
        shown = [self._found(r) for r in rows]
        shown.sort(
            key=lambda f: (
                not f.name,
                text.name_sort_key(f.family, f.middle, f.given),
                f.code or "",
            )
        )
        return SearchResult(total - (len(newest) - len(rows)), shown)

    def _found(self, row: Any) -> Found:
        fields: dict[str, Any] = {}
        if row["fields"] is not None:
            fields = json_object(
                self.session.open_json(
                    self.key(row["fields_key_id"]),
                    bytes(row["fields"]),
                    field_ad(row["id"], "fields"),
                )
            )
        family, middle, given = (str(fields.get(k, "")) for k in ("family", "middle", "given"))
        name = str(fields.get("full_name") or " ".join(p for p in (family, middle, given) if p))
        return Found(
            row["id"], row["code"], row["status"], row["received_at"], name, family, middle, given
        )
