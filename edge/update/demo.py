"""The update part of ``make demo``: regional IT signs a change, central verifies it, the box
takes it.

Called by the sync demo while its central runs: ``prepare`` makes regional IT's
repository and has central trust its root (so the box receives that root when it
enrolls), ``publish_and_update`` signs a fleet and a province configuration change,
publishes them over HTTP and lets the box verify and apply them.
"""

from __future__ import annotations

from pathlib import Path

from edge.store import Store
from edge.update.cycle import Options, update_once
from edge.update.gate import Gate
from edge.update.repository import AdminRepo


def prepare(base: Path, central_data: Path) -> AdminRepo:
    repo = AdminRepo.create(base / "update-repo", threshold=2, root_keys=3)
    repo.delegate("H29")
    version = Gate(central_data).pin((repo.metadata_dir / "1.root.json").read_bytes())
    print(
        f"\nRegional IT's update repository: {repo.path} (root threshold 2 of 3); "
        f"central trusts its root version {version}"
    )
    return repo


def publish_and_update(repo: AdminRepo, url: str, state: Path) -> None:
    repo.set_config({"min_dpi": 250})
    repo.set_config({"job_idle_seconds": 90}, office="H29")
    print(f"\nRegional IT: {repo.publish(url)}")
    report = update_once(state, Options(source=f"{url}/updates"))
    print(f"Box: update {report.status}; changed {', '.join(report.changed) or 'nothing'}")
    store = Store.open(state)
    try:
        settings = store.settings()
    finally:
        store.close()
    print(
        f"  min_dpi={settings.min_dpi:g} (fleet), job_idle_seconds={settings.job_idle_seconds:g} "
        "(province H29), verified against the root the box received at enrollment"
    )
