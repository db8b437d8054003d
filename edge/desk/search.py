"""Finding a dossier by code, CCCD, phone or name, for the signed-in clerk.

Codes by their trigram index (``LIKE`` for fewer than three characters), CCCD
and phone numbers by their blind-index terms, names by the blind-index terms of
every typed word (prefixes are indexed, so "ngu" finds Nguyễn), intersected.
Names are sealed, so ordering by Vietnamese collation opens them: at most the
newest ``limit`` matches, and the total says when there are more.

A number is found whole in any written form (``+84 912 345 678`` is ``0912345678``),
by its last ``NUMBER_END_MIN`` or more digits, and a CCCD by its first
``CCCD_START_MIN`` or more (``edge.records.number_tokens`` says why these parts).
Dossiers indexed by a release before these terms are re-indexed by the first
signed-in clerk (``Search.reindex``): only the index key makes terms.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from edge import text
from edge.desk.statuses import MERGED
from edge.records import CCCD_START_MIN, NUMBER_END_MIN, NUMBER_PART_MAX, Reader, index_terms
from edge.store import StoreError
from edge.vault import VaultError, field_ad, json_object

NUMBER_TOO_SHORT = "number_too_short"
"""``SearchResult.hint`` when digits were typed but fewer than ``NUMBER_END_MIN``: codes are
still searched, numbers are not (a 3-digit end would match one dossier in a thousand)."""

INDEX_REBUILDING = "index_rebuilding"
"""``SearchResult.hint`` for a number searched while dossiers indexed by an older release are
still being re-indexed: whole numbers as stored are found, parts and other forms may not be."""

REINDEX_BATCH = 100
"""Dossiers re-indexed per transaction: the daemon waits at most one batch (about 0.2 s here,
1 s on a Pi) to write."""

REINDEX_BATCH_IN_FIND = 20
FIND_REINDEX_BUDGET_S = 0.3
"""How long one search may spend re-indexing before it answers: a small office's index is
rebuilt by its first search; a large one's is spread over searches (and whatever the UI runs
between them) instead of freezing the screen once for minutes."""


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
    hint: str | None = None
    """A stable reason code the UI can explain (``NUMBER_TOO_SHORT``, ``INDEX_REBUILDING``)."""

    @property
    def truncated(self) -> bool:
        return self.total > len(self.rows)


_CODE_CHARS = re.compile(r"[0-9.\-]")
_NUMBER = re.compile(r"\(?\+?[\d\s.\-()/]*\d[\d\s.\-()/]*")
"""A query made of digits and the separators numbers are written with: a number, or the
digits of a code (``240115-0001``), so both are searched."""


class Search(Reader):
    _index_current = False
    """Set once this reader has seen no re-index pending: only a migration marks one, and
    it is checked once per reader rather than on every keystroke's search."""

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
        if self.reindex_pending:
            self.reindex(REINDEX_BATCH_IN_FIND, FIND_REINDEX_BUDGET_S)
        code_trigram = code_like = None
        number_terms: list[str] = []
        name_terms: list[str] = []
        hint: str | None = None
        if _CODE_CHARS.search(query) and "+" not in query:
            needle = query.upper()
            if len(needle) >= 3:
                code_trigram = '"' + needle.replace('"', '""') + '"'
            else:
                escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                code_like = f"%{escaped}%"
        if _NUMBER.fullmatch(query):
            if len(text.number_digits(query)) >= NUMBER_END_MIN:
                number_terms = self._number_terms(query)
            else:
                hint = NUMBER_TOO_SHORT
            if number_terms and self.reindex_pending:
                hint = INDEX_REBUILDING
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
            return SearchResult(0, hint=hint)
        rows = [r for r in self.store.dossier_summaries(newest) if r["status"] != MERGED]
        shown = [self._found(r) for r in rows]
        shown.sort(
            key=lambda f: (
                not f.name,
                text.name_sort_key(f.family, f.middle, f.given),
                f.code or "",
            )
        )
        return SearchResult(total - (len(newest) - len(rows)), shown, hint)

    def _number_terms(self, query: str) -> list[str]:
        """The blind terms a typed number may match: whole, its end, a CCCD's start.

        The digits as typed are tried as well as the phone's national form, so that
        "912345678" (the number without its 0) and "84912345678" find "0912.345.678".
        """
        digits = text.number_digits(query)
        phone = text.phone_digits(query)
        scopes: dict[str, set[str]] = {"cccd": {digits}, "phone": {digits, phone}}
        if len(digits) <= NUMBER_PART_MAX:
            scopes["cccd-end"] = {digits}
            scopes["phone-end"] = {digits}
            if len(digits) >= CCCD_START_MIN:
                scopes["cccd-start"] = {digits}
        terms: list[str] = []
        for scope, tokens in scopes.items():
            terms += self.session.blind_terms(sorted(tokens), scope)
        return terms

    @property
    def reindex_pending(self) -> bool:
        """Whether dossiers indexed by an older release still wait for ``reindex``."""
        if not self._index_current and self.store.search_reindex_cursor() is None:
            self._index_current = True
        return not self._index_current

    def reindex(self, batch: int = REINDEX_BATCH, budget_s: float | None = None) -> int:
        """Rebuild the blind index of dossiers indexed by an older release; how many were read.

        Migration 10 marks a store whose dossiers were indexed before numbers were indexed
        by their parts; terms need the index key, so only a signed-in clerk can rebuild
        them. It goes in batches, each its own short transaction that records how far it
        got, so the daemon is never held up for long and a power cut, a lock or an
        exhausted ``budget_s`` (seconds, checked after each batch) resumes where it
        stopped. Each dossier's data key is opened for it alone and not kept: a rebuild
        must not leave every key of the office in memory. A dossier whose fields cannot be
        opened keeps the terms it had; a merged one keeps none.
        """
        started = time.monotonic()
        done = 0
        while budget_s is None or time.monotonic() - started < budget_s:
            with self.store.transaction():
                cursor = self.store.search_reindex_cursor()
                if cursor is None:
                    break
                rows = self.store.search_reindex_batch(cursor, batch)
                for row in rows:
                    if row["status"] == MERGED:
                        continue
                    try:
                        fields = self._fields_of(row, keep_key=False)
                    except (VaultError, StoreError):
                        continue
                    self.store.replace_blind_terms(row["id"], index_terms(self.session, fields))
                self.store.search_reindex_advance(rows[-1]["id"] if rows else None)
            done += len(rows)
        return done

    def _fields_of(self, row: Any, *, keep_key: bool = True) -> dict[str, Any]:
        if row["fields"] is None:
            return {}
        key_id = row["fields_key_id"]
        if keep_key or key_id in self._keys:
            key = self.key(key_id)
        else:
            wrapped = bytes(self.store.key(key_id)["wrapped_office"])
            key = self.session.open_key(key_id, wrapped)
        return json_object(
            self.session.open_json(key, bytes(row["fields"]), field_ad(row["id"], "fields"))
        )

    def _found(self, row: Any) -> Found:
        fields = self._fields_of(row)
        family, middle, given = (str(fields.get(k, "")) for k in ("family", "middle", "given"))
        name = str(fields.get("full_name") or " ".join(p for p in (family, middle, given) if p))
        return Found(
            row["id"], row["code"], row["status"], row["received_at"], name, family, middle, given
        )
