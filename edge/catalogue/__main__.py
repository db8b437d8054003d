"""Check a catalogue or holiday file before publishing it: ``python -m edge.catalogue``.

Example::

    python -m edge.catalogue procedures procedures.json
    python -m edge.catalogue holidays holidays.json

The same checks a box runs on load, so what passes here is what every box will use.
Exit status 0 and one summary line when it checks; 2 and one line naming the bad
entry when it does not.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge.catalogue import CatalogueError, parse
from edge.desk.appointment import Calendar


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("procedures", "holidays"):
        print("usage: python -m edge.catalogue procedures|holidays FILE.json", file=sys.stderr)
        return 2
    kind, path = argv
    try:
        data = json.loads(Path(path).read_text("utf-8"))
        if kind == "procedures":
            version, procedures = parse(data)
            print(f"{path}: {len(procedures)} procedures, version {version or '(none)'}")
        else:
            calendar = Calendar.from_data(data)
            print(
                f"{path}: {len(calendar.holidays)} days off, {len(calendar.workdays)} make-up "
                f"working days, version {calendar.version or '(none)'}"
            )
    except (OSError, CatalogueError, ValueError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
