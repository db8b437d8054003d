"""Page preview: the terminal's graphics protocol where there is one, else half-blocks.

Kitty's graphics protocol and Sixel show the scan itself (through
textual-image); everywhere else (the Linux console, most SSH sessions, tests)
each cell shows two pixels with the upper half-block character, which is
enough to recognise a receipt slip, a blank back or a page turned sideways.

A page is shown turned as the clerk turned it (``turned``: the sealed scan never
changes). The enlarged view (``PageZoom``) shows part of the page: ``Viewport`` says
how far it is zoomed in from the whole page and where it is centred, and both ways of
drawing get the same cut-out, so zooming in until text is legible works on the box's
80×24 console as in a terminal with graphics.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, replace

from PIL import Image
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.app import ComposeResult
from textual.containers import Container
from textual.widget import Widget
from textual.widgets import Static

_PROTOCOL: str | None = None


NO_GRAPHICS_TERMS = ("linux", "vt", "screen", "tmux", "dumb")
"""Terminals that never show images: asking them costs half a second of timeouts at start."""


def detect_graphics() -> str | None:
    """Ask textual-image which protocol the terminal speaks; must run before Textual starts.

    textual-image queries the terminal when imported, which is only possible
    while nothing else reads the keyboard, and takes half a second on terminals
    that do not answer. The box's own console (TERM=linux) and multiplexers never
    show images, so they are not asked; EDGE_TUI_GRAPHICS=0 or 1 overrides.
    """
    global _PROTOCOL
    choice = os.environ.get("EDGE_TUI_GRAPHICS", "")
    term = os.environ.get("TERM", "")
    if choice == "0" or (choice != "1" and term.startswith(NO_GRAPHICS_TERMS)):
        return None
    try:
        from textual_image.renderable import Image as AutoImage
        from textual_image.renderable.sixel import Image as SixelImage
        from textual_image.renderable.tgp import Image as TGPImage
    except Exception:
        return None
    if AutoImage is TGPImage:
        _PROTOCOL = "tgp"
    elif AutoImage is SixelImage:
        _PROTOCOL = "sixel"
    return _PROTOCOL


def page_image(data: bytes, media_type: str, longest: int = 400) -> Image.Image:
    """A small RGB rendering of a stored page, as cheaply as its format allows."""
    if media_type == "application/pdf":
        import pypdfium2

        pdf = pypdfium2.PdfDocument(data)
        try:
            page = pdf[0]
            width, height = page.get_size()
            scale = longest / max(width, height)
            image = page.render(scale=scale).to_pil().convert("RGB")
        finally:
            pdf.close()
        return image
    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
        image.draft("RGB", (longest, longest))
    image = image.convert("RGB")
    image.thumbnail((longest, longest))
    return image


def turned(image: Image.Image, rotation: int) -> Image.Image:
    """The image turned ``rotation`` degrees clockwise (a multiple of 90)."""
    steps = {
        90: Image.Transpose.ROTATE_270,
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_90,
    }
    step = steps.get(rotation % 360)
    return image if step is None else image.transpose(step)


ZOOM_STEP = 2.0
"""Each + doubles the size: from the whole page to legible text in a handful of presses."""
MAX_SCALE = 2.0
"""Zooming stops once a scanned pixel is two screen pixels: beyond, only blocks grow."""


@dataclass(frozen=True)
class Viewport:
    """Part of a page: ``zoom`` times the whole page's size, centred at (``cx``, ``cy``).

    The centre is a fraction of the page's width and height; ``zoom`` 1 is the whole page.
    Screen pixels are square (a half-block cell is one pixel wide and two tall, a
    cell being about twice as tall as wide), so one scale serves both directions.
    """

    zoom: float = 1.0
    cx: float = 0.5
    cy: float = 0.5

    def scale(self, size: tuple[int, int], cols: int, rows: int) -> float:
        """Screen pixels per scanned pixel in a window of cols × rows cells."""
        width, height = size
        return min(cols / width, rows * 2 / height) * self.zoom

    def box(self, size: tuple[int, int], cols: int, rows: int) -> tuple[int, int, int, int]:
        """The part of the page (left, top, right, bottom) the window shows."""
        width, height = size
        scale = self.scale(size, cols, rows)
        w = min(width, cols / scale)
        h = min(height, rows * 2 / scale)
        cx = min(max(self.cx * width, w / 2), width - w / 2)
        cy = min(max(self.cy * height, h / 2), height - h / 2)
        left, top = round(cx - w / 2), round(cy - h / 2)
        return left, top, max(left + 1, round(cx + w / 2)), max(top + 1, round(cy + h / 2))

    def zoomed(self, step: int, size: tuple[int, int], cols: int, rows: int) -> Viewport:
        """``step`` presses of + (or of - when negative), within the whole page and 2:1.

        Zooming in from the whole page starts at its top, where reading starts; Page Down
        then goes on down the page.
        """
        zoom = self.zoom * ZOOM_STEP**step
        most = max(1.0, MAX_SCALE / max(1e-9, self.scale(size, cols, rows) / self.zoom))
        zoom = min(max(1.0, zoom), most)
        if self.zoom <= 1.0 < zoom:
            return replace(self, zoom=zoom, cy=0.0)
        return replace(self, zoom=zoom)

    def panned(self, dx: float, dy: float, size: tuple[int, int], cols: int, rows: int) -> Viewport:
        """Moved by ``dx``, ``dy`` windows (a quarter is one arrow key), kept on the page."""
        width, height = size
        left, top, right, bottom = self.box(size, cols, rows)
        w, h = (right - left) / width, (bottom - top) / height
        cx = min(max(self.centre(left, right, width) + dx * w, w / 2), 1 - w / 2)
        cy = min(max(self.centre(top, bottom, height) + dy * h, h / 2), 1 - h / 2)
        return replace(self, cx=cx, cy=cy)

    @staticmethod
    def centre(start: int, end: int, length: int) -> float:
        return (start + end) / 2 / length


def visible(image: Image.Image, view: Viewport | None, cols: int, rows: int) -> Image.Image:
    """What a window of cols × rows cells shows of ``image`` through ``view``."""
    if view is None or view.zoom <= 1.0:
        return image
    return image.crop(view.box(image.size, max(1, cols), max(1, rows)))


class HalfBlocks:
    """A Rich renderable: the image fitted into width × height cells, two pixels a cell."""

    def __init__(self, image: Image.Image, width: int, height: int) -> None:
        self.image = image
        self.width = max(1, width)
        self.height = max(1, height)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = min(self.width, options.max_width)
        src_w, src_h = self.image.size
        # a terminal cell is about twice as tall as wide; two pixels per cell vertically
        scale = min(width / src_w, (self.height * 2) / src_h)
        cols = max(1, int(src_w * scale))
        rows = max(2, int(src_h * scale) // 2 * 2)
        small = self.image.resize((cols, rows), Image.Resampling.BILINEAR)
        pixels = small.load()
        assert pixels is not None
        left = (width - cols) // 2
        for y in range(0, rows, 2):
            if left:
                yield Segment(" " * left)
            for x in range(cols):
                top = pixels[x, y]
                bottom = pixels[x, y + 1]
                yield Segment(
                    "▀",
                    Style(color=_rgb(top), bgcolor=_rgb(bottom)),
                )
            yield Segment.line()


class HalfBlockView(Widget):
    DEFAULT_CSS = "HalfBlockView { width: 1fr; height: 1fr; }"

    def __init__(self, image: Image.Image, view: Viewport | None = None) -> None:
        super().__init__()
        self.image = image
        self.view = view

    def render(self) -> HalfBlocks:
        width, height = self.content_size.width, self.content_size.height
        return HalfBlocks(visible(self.image, self.view, width, height), width, height)


class PagePreview(Container):
    """Shows one page, or a line saying why there is nothing to show."""

    DEFAULT_CSS = """
    PagePreview { height: 1fr; }
    PagePreview > Static { color: $text-muted; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static("")

    def show_message(self, message: str) -> None:
        self.remove_children()
        self.mount(Static(message))

    def show(self, image: Image.Image) -> None:
        self.remove_children()
        if _PROTOCOL is not None:
            from textual_image.widget import Image as GraphicsImage

            widget = GraphicsImage(image)
            widget.styles.width = "1fr"
            widget.styles.height = "1fr"
            self.mount(widget)
        else:
            self.mount(HalfBlockView(image))


def _rgb(pixel: float | tuple[int, ...]) -> str:
    """A pixel of the RGB preview as Rich's colour (a grey level if the image had one band)."""
    channels = pixel if isinstance(pixel, tuple) else (int(pixel),) * 3
    return f"rgb{tuple(channels[:3])}"


class PageZoom(Container):
    """One page, zoomed in and moved about with ``view``; the enlarged view's picture."""

    DEFAULT_CSS = """
    PageZoom { height: 1fr; }
    """

    def __init__(self, image: Image.Image, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.image = image
        self.view = Viewport()
        self._shown: tuple[Viewport, int, int] | None = None

    def compose(self) -> ComposeResult:
        if _PROTOCOL is None:
            yield HalfBlockView(self.image, self.view)

    def on_resize(self, event: events.Resize) -> None:
        self._draw()

    @property
    def window(self) -> tuple[int, int]:
        return max(1, self.content_size.width), max(1, self.content_size.height)

    def set_view(self, view: Viewport) -> None:
        self.view = view
        self._draw()

    def zoom(self, step: int) -> None:
        self.set_view(self.view.zoomed(step, self.image.size, *self.window))

    def pan(self, dx: float, dy: float) -> None:
        self.set_view(self.view.panned(dx, dy, self.image.size, *self.window))

    def fit(self) -> None:
        self.set_view(Viewport())

    def _draw(self) -> None:
        cols, rows = self.window
        if self._shown == (self.view, cols, rows):
            return
        self._shown = (self.view, cols, rows)
        if _PROTOCOL is None:
            for blocks in self.query(HalfBlockView):
                blocks.view = self.view
                blocks.refresh()
            return
        from textual_image.widget import Image as GraphicsImage

        self.remove_children()
        widget = GraphicsImage(visible(self.image, self.view, cols, rows))
        widget.styles.width = "1fr"
        widget.styles.height = "1fr"
        self.mount(widget)
