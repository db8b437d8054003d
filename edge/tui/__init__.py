"""The clerk's terminal UI (``edge tui``): a Vietnamese-first Textual app for the desk."""

from __future__ import annotations

import logging
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOG_FILE = "logs/tui.log"
LOG_BYTES = 1 << 20
QUIET_LOGGERS = ("fontTools", "fpdf", "PIL", "httpx", "httpcore")
"""Libraries that log routine work at INFO (fontTools logs every font subsetting)."""


def keep_logs_off_screen(state: Path) -> Path | None:
    """Send log records to a file under the state folder, never to the clerk's terminal.

    ``edge`` logs to stderr, and on the box the UI's unit has ``StandardError=tty``:
    every INFO line (fontTools subsetting the handover PDF's font, for one) was drawn
    over the clerk's screen. Handlers writing to stderr, stdout or any terminal are
    removed; warnings are captured into the log too. Returns the log file, or None
    when it cannot be written (then records are dropped rather than shown).
    """
    root = logging.getLogger()
    screens = {id(s) for s in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)}
    for existing in list(root.handlers):
        stream = getattr(existing, "stream", None)
        if isinstance(existing, logging.FileHandler) or stream is None:
            continue
        try:
            terminal = stream.isatty()
        except (AttributeError, ValueError):
            terminal = False
        if id(stream) in screens or terminal:
            root.removeHandler(existing)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    path = state / LOG_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = RotatingFileHandler(
            path, maxBytes=LOG_BYTES, backupCount=2, encoding="utf-8"
        )
    except OSError:
        root.addHandler(logging.NullHandler())
        return None
    from edge.observe.logs import FORMAT, OneLineFormatter

    handler.setFormatter(OneLineFormatter(FORMAT))
    root.addHandler(handler)
    return path


def run(
    state: Path,
    *,
    lang: str = "vi",
    inbox: Path | None = None,
    sign_in: tuple[str, str] | None = None,
) -> int:
    """Start the UI on a terminal; returns the exit status when the clerk quits.

    Non-zero when the app stopped on an error (Textual has printed its traceback), so a
    supervisor or a script sees the crash instead of a clean exit.
    ``sign_in`` (clerk, password) opens the desk already signed in: for ``make demo``.
    """
    from edge.tui.i18n import set_language
    from edge.tui.widgets.preview import detect_graphics

    keep_logs_off_screen(state)
    set_language(lang)
    detect_graphics()
    from edge.tui.app import EdgeApp
    from edge.tui.office import Office

    office = Office(state, inbox=inbox)
    try:
        if sign_in is not None:
            office.sign_in(*sign_in)
        app = EdgeApp(office)
        app.run()
    finally:
        office.close()
    return app.return_code or 0
