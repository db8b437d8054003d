"""Verified content into the box: one store transaction, or nothing.

Configuration is layered: ``fleet/config.json`` (national), then
``o/<prefix>/config.json`` for each prefix of the office code, shortest first, so
the most specific scope wins key by key; keys no scope publishes keep what else
set them (central's signed downlink, edge.sync). Reference data sets are replaced
whole by the most specific scope that carries them. The settings, the reference data,
the queued clerk changes, the metadata versions they came from and the
``update.applied`` event commit together: a power cut leaves the old
configuration or the new one.

Clerk accounts. Adding a clerk means wrapping the office private key under the
clerk's password, and the office private key exists only in memory while some
clerk is signed in (DESIGN.md section 5); regional IT never holds it. So regional
IT seals the clerk's initial password with HPKE to the box's office *public* key
(``edge.vault.seal_clerk_password``); the box stores that ciphertext and, the
next time any clerk signs in, opens it with the unlocked office key and wraps the
office key for the new clerk (``activate_pending``), who must then choose a new
password. Disabling needs no key: the clerk's wrapped office key is deleted from
the keyring right after the transaction commits (and again on the next run if
power was cut in between). A box with no clerk left is reopened on site with the
recovery key, which activates pending changes the same way.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from edge.clock import iso
from edge.records import Ledger
from edge.settings import Settings
from edge.store import Store
from edge.sync.outbox import bump_config
from edge.update import Refused
from edge.vault import Keyring, OfficeSession, VaultError

AWAITING = "awaiting-sign-in"
PENDING_DISABLE = "pending"
DONE = "done"
SUPERSEDED = "superseded"
OTHER_BOX = "for-another-box"


@dataclass
class Content:
    """Verified target documents, least specific scope first."""

    configs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    references: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    clerks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)


@dataclass
class Applied:
    changed: list[str]
    settings: dict[str, list[Any]]
    references: list[str]
    clerk_changes: list[dict[str, str]]

    @property
    def anything(self) -> bool:
        return bool(self.changed)


def effective_settings(
    current: Settings,
    configs: list[tuple[str, dict[str, Any]]],
    previous_sources: dict[str, str],
) -> tuple[Settings, dict[str, str]]:
    """The settings after this update, and which scope set each key it controls.

    Only keys some scope publishes are touched (most specific scope wins); a key
    an earlier update set but no scope publishes any more goes back to its default.
    Other keys keep their value, e.g. what central's signed downlink set (edge.sync).
    """
    defaults = Settings().as_dict()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for path, document in configs:
        settings = document.get("settings")
        if not isinstance(settings, dict):
            raise Refused(f"{path} has no 'settings' object")
        for key, value in settings.items():
            if key in defaults:
                values[key] = value
                sources[key] = path
    for key in previous_sources:
        if key not in sources and key in defaults:
            values[key] = defaults[key]
    try:
        updated = current.with_changes(**values)
        updated.patterns()
    except (ValueError, TypeError) as exc:
        raise Refused(f"the published configuration is not valid here: {exc}") from exc
    return updated, sources


def reference_sets(references: list[tuple[str, dict[str, Any]]]) -> dict[str, tuple[Any, str]]:
    sets: dict[str, tuple[Any, str]] = {}
    for path, document in references:
        published = document.get("sets")
        if not isinstance(published, dict):
            raise Refused(f"{path} has no 'sets' object")
        for name, data in published.items():
            sets[str(name)] = (data, path)
    return sets


def applied_hashes(store: Store) -> dict[str, str]:
    return json.loads(store.meta("update.targets") or "{}")


def apply(
    store: Store,
    ledger: Ledger,
    content: Content,
    *,
    keyring: Keyring,
    metadata: dict[str, Any],
    signed_at_ms: int | None,
) -> Applied:
    """Write everything that changed, its versions and its event, in one transaction."""
    before = applied_hashes(store)
    changed = sorted(
        path
        for path in set(before) | set(content.hashes)
        if before.get(path) != content.hashes.get(path)
    )
    previous_sources = json.loads(store.meta("update.config_sources") or "{}")
    settings, sources = effective_settings(store.settings(), content.configs, previous_sources)
    references = reference_sets(content.references)
    result = Applied(changed, {}, [], [])
    with store.transaction():
        if signed_at_ms is not None:
            store.clock.observe(signed_at_ms)
        store.put_meta("update.metadata", json.dumps(metadata, sort_keys=True))
        if not changed:
            ledger.record(None, "update.checked", {"outcome": "up-to-date", **metadata})
            return result
        old = store.settings().as_dict()
        new = settings.as_dict()
        result.settings = {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}
        store.put_settings(settings)
        if result.settings:
            bump_config(store)
        store.put_meta("update.config_sources", json.dumps(sources, sort_keys=True))
        result.references = _put_references(store, references)
        result.clerk_changes = _queue_clerk_changes(store, content.clerks, keyring)
        store.put_meta("update.targets", json.dumps(content.hashes, sort_keys=True))
        ledger.record(
            None,
            "update.applied",
            {
                **metadata,
                "changed": changed,
                "settings": result.settings,
                "reference": result.references,
                "clerks": result.clerk_changes,
            },
        )
    return result


def _put_references(store: Store, sets: dict[str, tuple[Any, str]]) -> list[str]:
    changed = []
    existing = {
        r["name"]: (r["data"], r["source"])
        for r in store.conn.execute("SELECT name, data, source FROM reference_data")
    }
    stamp = iso(store.time_ms())
    for name, (data, source) in sets.items():
        text = json.dumps(data, ensure_ascii=False, sort_keys=True)
        if existing.get(name) != (text, source):
            store.conn.execute(
                "INSERT INTO reference_data(name, data, source, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET data=excluded.data, source=excluded.source, "
                "updated=excluded.updated",
                (name, text, source, stamp),
            )
            changed.append(name)
    for name in set(existing) - set(sets):
        store.conn.execute("DELETE FROM reference_data WHERE name=?", (name,))
        changed.append(name)
    return sorted(changed)


def _queue_clerk_changes(
    store: Store, documents: list[tuple[str, dict[str, Any]]], keyring: Keyring
) -> list[dict[str, str]]:
    queued = []
    stamp = iso(store.time_ms())
    for path, document in documents:
        changes = document.get("changes")
        if document.get("office") != keyring.office or not isinstance(changes, list):
            raise Refused(f"{path} is not a clerk list for office {keyring.office}")
        for seq, change in enumerate(changes):
            op, name, change_id = change.get("op"), change.get("name"), change.get("id")
            if op not in ("add", "reset", "disable") or not name or not change_id:
                raise Refused(f"{path} holds a clerk change this box does not understand")
            seen = store.conn.execute("SELECT 1 FROM clerk_changes WHERE id=?", (change_id,))
            if seen.fetchone():
                continue
            sealed = None
            status = PENDING_DISABLE
            if op != "disable":
                mine = (change.get("sealed") or {}).get(keyring.office_key_id)
                sealed = base64.b64decode(mine) if mine else None
                status = AWAITING if sealed else OTHER_BOX
            store.conn.execute(
                "UPDATE clerk_changes SET status=? WHERE name=? AND status IN (?, ?)",
                (SUPERSEDED, name, AWAITING, PENDING_DISABLE),
            )
            store.conn.execute(
                "INSERT INTO clerk_changes(id, seq, name, op, sealed, source, status, received) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (change_id, seq, name, op, sealed, path, status, stamp),
            )
            queued.append({"id": change_id, "op": op, "name": name, "status": status})
    return queued


def finish_disables(store: Store, keyring: Keyring, ledger: Ledger) -> list[str]:
    """Remove disabled clerks' wrapped keys; safe to run again after a power cut."""
    rows = store.conn.execute(
        "SELECT id, name FROM clerk_changes WHERE status=? AND op='disable' ORDER BY received, seq",
        (PENDING_DISABLE,),
    ).fetchall()
    done = []
    for row in rows:
        keyring.remove_clerk(row["name"])
        with store.transaction():
            store.conn.execute(
                "UPDATE clerk_changes SET status=?, done=? WHERE id=?",
                (DONE, iso(store.time_ms()), row["id"]),
            )
            ledger.record(None, "clerk.disabled", {"clerk": row["name"], "change": row["id"]})
        done.append(row["name"])
    return done


def pending_clerks(store: Store) -> list[dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT id, name, op, status, source, received FROM clerk_changes "
        "WHERE status IN (?, ?) ORDER BY received, seq",
        (AWAITING, PENDING_DISABLE),
    ).fetchall()
    return [dict(r) for r in rows]


def activate_pending(
    store: Store, keyring: Keyring, session: OfficeSession, ledger: Ledger
) -> list[str]:
    """At a sign-in (or recovery unlock): give waiting clerks the office key.

    Call right after ``Keyring.unlock``/``unlock_recovery`` with the new session.
    """
    rows = store.conn.execute(
        "SELECT id, name, op, sealed FROM clerk_changes WHERE status=? ORDER BY received, seq",
        (AWAITING,),
    ).fetchall()
    activated = []
    for row in rows:
        try:
            keyring.enroll_sealed_clerk(session, row["id"], row["name"], bytes(row["sealed"]))
            status, event = DONE, "clerk.activated"
        except VaultError:
            status, event = "unreadable", "clerk.activation_failed"
        with store.transaction():
            store.conn.execute(
                "UPDATE clerk_changes SET status=?, done=? WHERE id=?",
                (status, iso(store.time_ms()), row["id"]),
            )
            ledger.record(
                None,
                event,
                {"clerk": row["name"], "op": row["op"], "change": row["id"], "by": session.clerk},
            )
        if status == DONE:
            activated.append(row["name"])
    return activated


def effective_config(store: Store, keyring: Keyring) -> dict[str, Any]:
    """What ``edge config --json`` prints: settings, where they came from, versions."""
    references = {
        r["name"]: {"source": r["source"], "updated": r["updated"]}
        for r in store.conn.execute("SELECT name, source, updated FROM reference_data")
    }
    return {
        "office": keyring.office,
        "office_key": {
            "id": keyring.office_key_id,
            "public": base64.b64encode(keyring.office_public).decode("ascii"),
        },
        "settings": store.settings().as_dict(),
        "sources": json.loads(store.meta("update.config_sources") or "{}"),
        "reference": references,
        "metadata": json.loads(store.meta("update.metadata") or "{}"),
        "targets": applied_hashes(store),
        "clerks": {"active": keyring.clerks(), "pending": pending_clerks(store)},
    }


def reference_data(store: Store, name: str) -> Any | None:
    """One published reference data set (procedure catalogue, agency codes…), or None."""
    row = store.conn.execute("SELECT data FROM reference_data WHERE name=?", (name,)).fetchone()
    return json.loads(row["data"]) if row else None
