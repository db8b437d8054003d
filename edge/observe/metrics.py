"""Prometheus metrics read from the database at scrape time.

Counting rows on each scrape, rather than incrementing counters in the capture path,
keeps the numbers true across restarts, power cuts and the clerk UI's own writes, and
keeps the capture code free of metrics calls. Every scrape opens its own read-only
connection (``health.read_only``), so it never shares the daemon's connection or thread.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.clock import parse_iso
from edge.observe.health import LIVE_ALERTS, Vitals, read_only, snapshot

log = logging.getLogger("edge.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreCollector(Collector):
    """One scrape: one read-only connection, one snapshot, every ``edge_`` family."""

    def __init__(self, state: Path, vitals: Vitals | None = None) -> None:
        self.state = state
        self.vitals = vitals

    def describe(self) -> list[Metric]:
        # Empty: families come and go with the data (sync error kinds), so describe nothing
        # and let the registry call collect() at scrape time only.
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("edge_database_up", "1 when the database answered this scrape")
        try:
            conn = read_only(self.state)
            try:
                data = snapshot(conn, self.state)
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            log.warning("metrics: cannot read the database: %s", exc)
            up.add_metric([], 0)
            yield up
            # a disk that broke the database read is what these alerts are about
            yield _alerts(LIVE_ALERTS.all())
            yield from self._vitals()
            return
        up.add_metric([], 1)
        yield up
        yield from _families(data)
        yield from self._vitals()

    def _vitals(self) -> Iterator[Metric]:
        watching = GaugeMetricFamily(
            "edge_watcher_up", "1 when the daemon is watching the inbox and its loop is alive"
        )
        watching.add_metric([], 1 if self.vitals is not None and self.vitals.alive() else 0)
        yield watching
        if self.vitals is not None:
            yield GaugeMetricFamily(
                "edge_loop_beat_age_seconds",
                "seconds since the daemon's main loop last showed progress",
                value=self.vitals.beat_age(),
            )
            # Only the daemon sees a page go to review as it happens; the database keeps
            # the dossier, not how many pages capture was unsure of (the clerk may merge).
            yield CounterMetricFamily(
                "edge_pages_sent_to_review",
                "pages capture could not place for sure and sent to the clerk since start",
                value=self.vitals.sent_to_review,
            )


def _families(data: dict) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "edge_build_info", "the running release and office", labels=["version", "office"]
    )
    info.add_metric([data["version"], data["office"] or ""], 1)
    yield info
    yield CounterMetricFamily(
        "edge_pages_captured", "pages stored since the box was provisioned", value=data["pages"]
    )
    yield CounterMetricFamily(
        "edge_events", "events appended to the hash-chained log", value=data["events"]
    )
    dossiers = GaugeMetricFamily("edge_dossiers", "dossiers by status", labels=["status"])
    for status, count in sorted(data["dossiers"].items()):
        dossiers.add_metric([status], count)
    yield dossiers
    yield GaugeMetricFamily(
        "edge_dossiers_needs_review",
        "dossiers waiting for the clerk to check a cover capture could not confirm",
        value=data["open_reviews"],
    )
    if data["oldest_review"] is not None:
        yield GaugeMetricFamily(
            "edge_dossiers_needs_review_oldest_timestamp_seconds",
            "when the oldest dossier still waiting for the clerk's check arrived",
            value=parse_iso(data["oldest_review"]) / 1000,
        )
    quarantine = GaugeMetricFamily(
        "edge_quarantine_files", "files quarantined as bad input, by status", labels=["status"]
    )
    for status, count in sorted(data["quarantine"].items()):
        quarantine.add_metric([status], count)
    yield quarantine
    outbox = data["outbox"]
    yield GaugeMetricFamily(
        "edge_outbox_dossiers", "dossiers central has not acknowledged", value=outbox["dossiers"]
    )
    yield GaugeMetricFamily(
        "edge_outbox_events", "events central has not acknowledged", value=outbox["events"]
    )
    yield GaugeMetricFamily(
        "edge_outbox_bytes",
        "sealed bytes (page blobs and event payloads) waiting for central",
        value=outbox["bytes"],
    )
    yield GaugeMetricFamily(
        "edge_outbox_batches_in_flight",
        "signed batches sent or built but without central's receipt",
        value=outbox["batches_in_flight"],
    )
    sync = data["sync"]
    last = parse_iso(sync["last_ok"]) / 1000 if sync["last_ok"] != "never" else 0
    yield GaugeMetricFamily(
        "edge_last_sync_timestamp_seconds",
        "when central last acknowledged a batch (0: never)",
        value=last,
    )
    errors = CounterMetricFamily(
        "edge_sync_errors", "failed sync attempts by kind", labels=["kind"]
    )
    for kind, count in sorted(sync["errors"].items()):
        errors.add_metric([kind], count)
    yield errors
    disk = data["disk"]
    yield GaugeMetricFamily(
        "edge_disk_free_bytes", "free bytes on the state filesystem", value=disk["free_bytes"]
    )
    yield GaugeMetricFamily(
        "edge_disk_reserve_bytes",
        "free space below which the box stops taking scans",
        value=disk["min_free_bytes"],
    )
    clock = data["clock"]
    yield GaugeMetricFamily(
        "edge_clock_floor_offset_seconds",
        "wall clock minus the time floor (negative: the clock is behind trusted time)",
        value=clock["offset_seconds"],
    )
    yield GaugeMetricFamily(
        "edge_time_floor_timestamp_seconds",
        "the newest trusted time the box has seen",
        value=parse_iso(clock["floor"]) / 1000,
    )
    if clock["central_offset_seconds"] is not None:
        yield GaugeMetricFamily(
            "edge_clock_central_offset_seconds",
            "central's clock minus this box's, measured at the last contact",
            value=clock["central_offset_seconds"],
        )
    yield _alerts(data["alerts"])


def _alerts(active: dict[str, str]) -> Metric:
    alerts = GaugeMetricFamily("edge_alert", "active alerts (1 each)", labels=["name"])
    for name in sorted(active):
        alerts.add_metric([name], 1)
    return alerts


def registry(state: Path, vitals: Vitals | None = None) -> CollectorRegistry:
    """A registry of our own: the box's families plus this process's memory and CPU."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(state, vitals))
    ProcessCollector(namespace="edge", registry=reg)
    return reg


def render(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
