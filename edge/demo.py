"""``make demo``: a demo office, a morning's worth of generated scans, and the result.

Run as ``python -m edge.demo --dir demo-state``. It provisions a box (clerk
``lan``, password ``demo-pass-2026``), writes realistic scans into its inbox
(loose JPEG pages, a PDF job, a TIFF job, a job folder, a blank duplex back,
pages before any cover sheet, a damaged file and desktop litter), captures them,
prints what the clerk would see and exports one dossier as a BagIt bag. Then it
starts a central on loopback, enrolls the box and shows the dossiers arriving
there (and a 'result ready' status coming back).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import bagit

from edge import samples
from edge.archive import export_bag
from edge.daemon import Daemon
from edge.provision import provision
from edge.store import Store
from edge.vault import Keyring

DEMO_CLERK = "lan"
DEMO_PASSWORD = "demo-pass-2026"


def write_scans(inbox: Path, seed: int = 7) -> None:
    codes = samples.sample_codes(7, seed)
    DossierSpec = samples.DossierSpec
    samples.write_job(
        inbox,
        [
            DossierSpec(None, 1),
            DossierSpec(codes[0], 3, blank_backs=True),
            DossierSpec(codes[1], 2),
        ],
        "jpeg",
        seed=seed,
    )
    samples.write_job(
        inbox,
        [DossierSpec(codes[2], 4), DossierSpec(codes[3], 2, symbology="code128")],
        "pdf",
        seed=seed + 1,
        name="ho-so-buu-dien",
    )
    samples.write_job(inbox, [DossierSpec(codes[4], 3)], "tiff", seed=seed + 2, name="may-quet")
    job = inbox / "job-0815"
    job.mkdir()
    samples.write_job(
        job,
        [DossierSpec(codes[5], 2, symbology="code128"), DossierSpec(codes[6], 2)],
        "jpeg",
        seed=seed + 3,
    )
    (inbox / "ghi-chu.jpg").write_text("đây không phải là ảnh quét\n", encoding="utf-8")
    (inbox / "Thumbs.db").write_bytes(b"\0" * 64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="demo-state", type=Path)
    args = parser.parse_args(argv)
    base: Path = args.dir.resolve()
    if base.exists():
        shutil.rmtree(base)
    state, inbox, out = base / "state", base / "inbox", base / "export"
    inbox.mkdir(parents=True)
    print(f"Provisioning a demo box in {state} (clerk {DEMO_CLERK}, password {DEMO_PASSWORD})")
    provision(state, office="H29.01", clerk=DEMO_CLERK, password=DEMO_PASSWORD)
    write_scans(inbox)
    print(f"Scanner wrote {sum(1 for _ in inbox.rglob('*') if _.is_file())} files into {inbox}")
    daemon = Daemon(state, inbox, {"settle_seconds": 0.0})
    try:
        report = daemon.run_once().as_json()
    finally:
        daemon.close()
    print("\nCapture summary:")
    print(json.dumps(report, ensure_ascii=False, indent=1))
    store = Store.open(state)
    dossiers = store.list_dossiers()
    print(f"\n{'code':32} {'status':16} pages  flags")
    for row in dossiers:
        print(
            f"{row['code'] or '(chưa gán mã)':32} {row['status']:16} {row['pages']:5}  "
            f"{', '.join(row['flags']) or '-'}"
        )
    for item in store.list_quarantine():
        print(f"quarantined {item['name']}: {item['message']}")
    first = next(row for row in dossiers if row["code"])
    session = Keyring.load(state).unlock(DEMO_CLERK, DEMO_PASSWORD)
    bag_path = export_bag(store, session, first["id"], out)
    session.close()
    store.close()
    bagit.Bag(str(bag_path)).validate()
    print(f"\nExported {first['code']} as a BagIt bag (valid): {bag_path}")
    print(f"Remaining in the inbox: {sorted(os.listdir(inbox))}")
    from edge.sync.demo import show_central

    show_central(base, state, DEMO_CLERK, DEMO_PASSWORD)
    from edge.tui.demo_office import open_demo_desk

    open_demo_desk(state, inbox, DEMO_CLERK, DEMO_PASSWORD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
