"""Dossier codes: which codes a box may send (published patterns) and which office owns one.

The clear metadata a batch carries is what central lists and routes statuses by,
so a code must match a pattern regional IT published and, once one office's box
sent it, belongs to that office until regional IT assigns it elsewhere.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

from sqlalchemy import Connection, select, update

from edge.domain import DEFAULT_CODE_PATTERNS, CodePatterns
from edge.sync import contract as c
from edge.sync.central import storage as st
from edge.sync.central.core import Core
from edge.sync.central.errors import AdminError
from edge.update import office_prefixes


class DossierCodes:
    """The dossier-code patterns central accepts codes by, compiled, refreshed on a miss;
    and who owns each code.

    Built-in defaults plus ``published_code_patterns``. A code no known pattern takes
    makes one refresh (another receiver process may have pushed a pattern just now), at
    most every few seconds, before the batch is refused.
    """

    REFRESH_SECONDS = 5.0

    def __init__(self, core: Core) -> None:
        self.core = core
        self._patterns: list[re.Pattern[str]] | None = None
        self._loaded = 0.0
        self._lock = threading.Lock()

    # -- patterns --------------------------------------------------------------

    def forget(self) -> None:
        self._patterns = None

    def published_code_patterns(self) -> list[str]:
        """Every dossier-code pattern regional IT ever gave a box: pushed (``edge central
        config``, any office, any time: a box may still send codes an older pattern
        accepted, and one enrolled later starts with them) or in a configuration file of
        the signed update repository central serves (docs/updates.md)."""
        found: list[str] = []
        with self.core.tx() as conn:
            for row in conn.execute(
                select(st.downlink.c.document).where(st.downlink.c.kind == "config")
            ):
                try:
                    doc = c.decode_document(
                        c.SignedDocument(signed=row.document, signature="-"), c.DownlinkDoc
                    )
                except c.DocumentError:
                    continue
                found.extend(_patterns_in(doc.body.get("settings")))
            for settings in conn.execute(select(st.config_pushes.c.settings)).scalars():
                try:
                    found.extend(_patterns_in(json.loads(settings)))
                except ValueError:
                    continue
        targets = self.core.data / "updates" / "targets"
        for path in sorted(targets.glob("**/*.config.json")) if targets.is_dir() else ():
            try:
                if path.is_symlink() or path.stat().st_size > (1 << 20):
                    continue
                document = json.loads(path.read_bytes())
            except (OSError, ValueError, RecursionError):
                continue
            if isinstance(document, dict):
                found.extend(_patterns_in(document.get("settings")))
        return found

    def _load(self, force: bool) -> list[re.Pattern[str]]:
        with self._lock:
            stale = time.monotonic() - self._loaded > self.REFRESH_SECONDS
            if self._patterns is None or (force and stale):
                compiled: dict[str, re.Pattern[str]] = {}
                for source in [*DEFAULT_CODE_PATTERNS, *self.published_code_patterns()]:
                    if source in compiled:
                        continue
                    try:
                        pattern = re.compile(source, re.ASCII)
                    except re.error:
                        continue
                    if "date" in pattern.groupindex:
                        compiled[source] = pattern
                self._patterns = list(compiled.values())
                self._loaded = time.monotonic()
            return self._patterns

    def judge(self, code: str, office: str) -> str | None:
        """None when the code is one this office's box may send; else what is wrong."""
        for force in (False, True):
            matched = [p for p in self._load(force) if _code_fits(p, code)]
            if matched:
                break
        else:
            return f"code {code} matches no dossier-code pattern regional IT published"
        province = office_prefixes(office)[0]
        for pattern in matched:
            groups = pattern.fullmatch(code).groupdict()  # type: ignore[union-attr]
            if groups.get("office") not in (None, office):
                continue
            if groups.get("province") not in (None, province):
                continue
            return None
        return f"code {code} names another office than this box's {office}"

    # -- ownership -------------------------------------------------------------

    def claim_codes(self, conn: Connection, device_row: Any, batch: c.Batch) -> None:
        """First writer owns a code: its office's boxes may hold it, no other office's may.

        The primary key on ``dossier_codes.code`` settles two offices racing for a new
        code (on PostgreSQL the second insert waits for the first to commit, then conflicts).
        """
        now = self.core.now()
        for dossier in batch.dossiers:
            if dossier.code is None:
                continue
            conn.execute(
                self.core.insert(conn, st.dossier_codes)
                .values(
                    code=dossier.code,
                    office=device_row.office,
                    device_id=device_row.device_id,
                    first_ms=now,
                )
                .on_conflict_do_nothing()
            )
            owner = conn.execute(
                select(st.dossier_codes.c.office).where(st.dossier_codes.c.code == dossier.code)
            ).scalar_one()
            if owner != device_row.office:
                raise c.ProblemError(
                    c.Code.DOSSIER_CLAIMED,
                    f"dossier code {dossier.code} belongs to a box of another office: "
                    "check the code on the cover, or ask regional IT",
                )

    def assign_code(self, code: str, office: str) -> str | None:
        """Regional IT settles who owns a dossier code (``edge central assign-code``): boxes
        of ``office`` may then send it and get its statuses; returns the previous owner."""
        code = code.strip().upper()
        office = office.strip().upper()
        with self.core.tx() as conn:
            previous = conn.execute(
                select(st.dossier_codes.c.office).where(st.dossier_codes.c.code == code)
            ).scalar()
            holder = conn.execute(
                select(st.devices.c.device_id).where(st.devices.c.office == office).limit(1)
            ).scalar()
            if holder is None:
                raise AdminError(f"no box of office {office} is enrolled: check the office code")
            if previous is None:
                conn.execute(
                    st.dossier_codes.insert().values(
                        code=code, office=office, device_id=holder, first_ms=self.core.now()
                    )
                )
            else:
                conn.execute(
                    update(st.dossier_codes)
                    .where(st.dossier_codes.c.code == code)
                    .values(office=office, device_id=holder)
                )
        return previous


def _patterns_in(settings: Any) -> list[str]:
    if not isinstance(settings, dict):
        return []
    patterns = settings.get("code_patterns")
    if not isinstance(patterns, list):
        return []
    return [p for p in patterns if isinstance(p, str) and len(p) <= 1000]


def _code_fits(pattern: re.Pattern[str], code: str) -> bool:
    """The box's own rule (edge.domain.CodePatterns): a full match with a real date."""
    return CodePatterns((pattern,)).match(code) == code
