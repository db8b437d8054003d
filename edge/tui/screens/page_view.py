"""The enlarged view of a page (Enter on the page list): zoom in until it can be read.

+ and - zoom in and out (each doubles or halves), the arrow keys move a quarter of the
window, Page Up and Page Down a whole window (reading a page top to bottom), 0 shows
the whole page again; Esc closes. At 80×24 on the box's console, where a page is drawn
with half-block characters two pixels a cell, a few presses of + make typed text
legible. The title says which page, how far it is zoomed and which keys move.
"""

from __future__ import annotations

from typing import ClassVar

from PIL import Image
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer

from edge.tui.i18n import N_, _
from edge.tui.widgets.common import Plain, translate_bindings
from edge.tui.widgets.preview import PageZoom


class PageViewScreen(ModalScreen[None]):
    """One page as large as the terminal allows, zoomed and moved with the keyboard."""

    DEFAULT_CSS = """
    PageViewScreen #page-view-box {
        width: 100%; height: 100%; border: round $accent; background: $surface;
    }
    PageViewScreen #page-view-title { height: 1; text-style: bold; padding: 0 1; }
    PageViewScreen PageZoom { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("plus,equals_sign", "zoom(1)", N_("Zoom in"), key_display="+"),
        Binding("minus,underscore", "zoom(-1)", N_("Zoom out"), key_display="-"),
        Binding("0", "fit", N_("Whole page"), key_display="0"),
        Binding("left", "pan(-0.25, 0)", N_("Move left"), show=False),
        Binding("right", "pan(0.25, 0)", N_("Move right"), show=False),
        Binding("up", "pan(0, -0.25)", N_("Move up"), show=False),
        Binding("down", "pan(0, 0.25)", N_("Move down"), show=False),
        Binding("pageup", "pan(0, -1)", N_("Up a window"), show=False),
        Binding("pagedown", "pan(0, 1)", N_("Down a window"), show=False),
        Binding("escape,enter", "close", N_("Close"), key_display="Esc"),
        Binding("f1,question_mark", "app.help", N_("Help"), key_display="F1"),
    ]

    def __init__(self, title: str, image: Image.Image) -> None:
        super().__init__()
        translate_bindings(self)
        self.title_text = title
        self.image = image

    def compose(self) -> ComposeResult:
        with Vertical(id="page-view-box"):
            yield Plain(self.title_text, id="page-view-title")
            yield PageZoom(self.image)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._show_title()

    @property
    def zoom_view(self) -> PageZoom:
        return self.query_one(PageZoom)

    def _show_title(self) -> None:
        zoom = self.zoom_view.view.zoom
        if zoom <= 1.0:
            where = _("whole page · + zooms in")
        else:
            where = _("×{zoom} · arrows move, 0 whole page").format(zoom=f"{zoom:g}")
        self.query_one("#page-view-title", Plain).update(f"{self.title_text} · {where}")

    def action_zoom(self, step: int) -> None:
        self.zoom_view.zoom(step)
        self._show_title()

    def action_pan(self, dx: float, dy: float) -> None:
        self.zoom_view.pan(dx, dy)

    def action_fit(self) -> None:
        self.zoom_view.fit()
        self._show_title()

    def action_close(self) -> None:
        self.dismiss(None)
