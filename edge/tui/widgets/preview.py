"""Page preview: the terminal's graphics protocol where there is one, else half-blocks.

Kitty's graphics protocol and Sixel show the scan itself (through
textual-image); everywhere else (the Linux console, most SSH sessions, tests)
each cell shows two pixels with the upper half-block character, which is
enough to recognise a receipt slip, a blank back or a page turned sideways.
"""

from __future__ import annotations

import io
import os

from PIL import Image
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
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

    def __init__(self, image: Image.Image) -> None:
        super().__init__()
        self.image = image

    def render(self) -> HalfBlocks:
        return HalfBlocks(self.image, self.content_size.width, self.content_size.height)


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
