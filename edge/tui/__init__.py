"""The clerk's terminal UI (``edge tui``): a Vietnamese-first Textual app for the desk."""

from __future__ import annotations

from pathlib import Path


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
