"""A virtualised list of dossiers: 100,000 rows scroll as fast as ten.

Only the rows on screen are drawn, and rows are fetched from the database a
block at a time (the source answers count and rows by offset), so memory and
the time of a key press do not grow with the table. A DataTable would build a
row object for every dossier first.

Cells are written to the terminal as segments, never parsed as markup; what they hold
(file names, codes read from paper, citizens' names) is outside text, so each goes
through ``edge.printable`` first.

Sealed values (the citizen's name) are opened by the screen's ``reveal`` hook only for
a row about to be drawn, and kept only in the in-memory block of rows: a list of
100,000 dossiers opens the twenty on screen, not the table. ``forget`` drops them when
the desk locks.

Columns that matter less say the narrowest list they are shown in, so the same list
keeps its essential columns whole at 80 columns and shows more on a wider terminal.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from edge.printable import printable
from edge.tui.i18n import N_
from edge.tui.widgets.common import translate_bindings


class RowSource(Protocol):
    def count(self) -> int: ...

    def rows(self, offset: int, limit: int) -> list[dict[str, Any]]: ...


class ListSource:
    """Rows already in memory (search results, quarantine) behind the same interface."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows

    def count(self) -> int:
        return len(self._rows)

    def rows(self, offset: int, limit: int) -> list[dict[str, Any]]:
        return self._rows[offset : offset + limit]


@dataclass(frozen=True)
class Column:
    title: str
    width: int
    """Cells; 0 makes the column take what the others leave (shared when several do)."""
    cell: Callable[[dict[str, Any]], str]
    align: str = "left"
    min_list_width: int = 0
    """Left out of a list narrower than this many cells."""


REVEALED = "_revealed"
"""Set in a row once ``reveal`` added its sealed values (kept with the row's block)."""


class DossierList(ScrollView, can_focus=True):
    """Rows of a source under a fixed header line; Enter chooses the row under the cursor."""

    BLOCK = 100
    MAX_BLOCKS = 6

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", show=False),
        Binding("down", "move(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "jump(0)", show=False),
        Binding("end", "jump(-1)", show=False),
        Binding("enter", "choose", N_("Open")),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "dossier-list--header",
        "dossier-list--cursor",
        "dossier-list--empty",
        "dossier-list--marked",
    }

    DEFAULT_CSS = """
    DossierList { height: 1fr; overflow-x: hidden; scrollbar-size-vertical: 1; }
    DossierList > .dossier-list--header { text-style: bold; background: $boost; }
    DossierList > .dossier-list--cursor { background: $block-cursor-blurred-background; }
    DossierList:focus > .dossier-list--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
        text-style: bold;
    }
    DossierList > .dossier-list--empty { color: $text-muted; text-style: italic; }
    DossierList > .dossier-list--marked { color: $text-error; text-style: bold; }
    DossierList:ansi > .dossier-list--marked { color: ansi_bright_red; text-style: bold; }
    """

    cursor: reactive[int] = reactive(0, repaint=False)

    class Chosen(Message):
        def __init__(self, sender: DossierList, row: dict[str, Any]) -> None:
            super().__init__()
            self.list = sender
            self.row = row

    class Highlighted(Message):
        def __init__(self, sender: DossierList, row: dict[str, Any] | None) -> None:
            super().__init__()
            self.list = sender
            self.row = row

    def __init__(
        self,
        source: RowSource,
        columns: list[Column],
        *,
        empty: str = "",
        reveal: Callable[[dict[str, Any]], None] | None = None,
        marked: Callable[[dict[str, Any]], bool] | None = None,
        id: str | None = None,
    ) -> None:
        """``reveal`` adds a row's sealed values just before it is first drawn; ``marked``
        rows (overdue) are drawn bold in the warning colour: the screen puts a mark or a
        word in a cell too, so the 16 colours of the box's console lose nothing."""
        super().__init__(id=id)
        translate_bindings(self)
        self.source = source
        self.columns = columns
        self.empty = empty
        self.reveal = reveal
        self.marked = marked
        self.total = 0
        self._blocks: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()

    def on_mount(self) -> None:
        self.reload()

    # data

    def set_source(self, source: RowSource) -> None:
        self.source = source
        self.cursor = 0
        self.scroll_to(y=0, animate=False, immediate=True)
        self.reload()

    def reload(self) -> None:
        """Count again and forget cached rows: called when the database changed."""
        self.total = self.source.count()
        self._blocks.clear()
        self.virtual_size = Size(self.size.width, self.total + 1)
        if self.cursor >= self.total:
            self.cursor = max(0, self.total - 1)
        self.refresh()
        self.post_message(self.Highlighted(self, self.row(self.cursor)))

    def forget(self) -> None:
        """Drop every fetched row with what ``reveal`` opened (the desk is locking)."""
        self._blocks.clear()
        self.refresh()

    def row(self, index: int) -> dict[str, Any] | None:
        if not 0 <= index < self.total:
            return None
        block, offset = divmod(index, self.BLOCK)
        rows = self._blocks.get(block)
        if rows is None:
            rows = self.source.rows(block * self.BLOCK, self.BLOCK)
            self._blocks[block] = rows
            while len(self._blocks) > self.MAX_BLOCKS:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(block)
        return rows[offset] if offset < len(rows) else None

    @property
    def current(self) -> dict[str, Any] | None:
        return self.row(self.cursor)

    # drawing

    def shown_columns(self, width: int | None = None) -> list[Column]:
        width = self.size.width if width is None else width
        return [c for c in self.columns if width >= c.min_list_width]

    def _widths(self, columns: list[Column], width: int) -> list[int]:
        fixed = sum(c.width for c in columns if c.width) + len(columns)
        flexible = sum(1 for c in columns if not c.width) or 1
        flex = max(4, (width - fixed) // flexible)
        return [c.width or flex for c in columns]

    def _line(self, columns: list[Column], cells: list[str], width: int) -> str:
        parts = []
        for column, size, cell in zip(columns, self._widths(columns, width), cells, strict=True):
            value = printable(cell)
            if cell_len(value) > size:
                value = set_cell_size(value, max(0, size - 1)) + "…"
            pad = " " * (size - cell_len(value))
            parts.append(pad + value if column.align == "right" else value + pad)
        return set_cell_size(" " + " ".join(parts), width)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        columns = self.shown_columns(width)
        if y == 0:
            style = self.get_component_rich_style("dossier-list--header")
            text = self._line(columns, [c.title for c in columns], width)
            return Strip([Segment(text, style)], width)
        index = self.scroll_offset.y + y - 1
        base = self.rich_style
        if self.total == 0:
            if y == 1:
                style = self.get_component_rich_style("dossier-list--empty")
                empty = set_cell_size(" " + printable(self.empty), width)
                return Strip([Segment(empty, style)], width)
            return Strip.blank(width, base)
        row = self.row(index)
        if row is None:
            return Strip.blank(width, base)
        if self.reveal is not None and not row.get(REVEALED):
            self.reveal(row)
            row[REVEALED] = True
        text = self._line(columns, [c.cell(row) for c in columns], width)
        style = base
        if self.marked is not None and self.marked(row):
            style += self.get_component_rich_style("dossier-list--marked")
        if index == self.cursor:
            style += self.get_component_rich_style("dossier-list--cursor")
        return Strip([Segment(text, style)], width)

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, self.total + 1)

    # moving

    @property
    def _visible(self) -> int:
        return max(1, self.size.height - 1)

    def watch_cursor(self, old: int, new: int) -> None:
        top = self.scroll_offset.y
        if new < top:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= top + self._visible:
            self.scroll_to(y=new - self._visible + 1, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.Highlighted(self, self.row(new)))

    def action_move(self, delta: int) -> None:
        if self.total:
            self.cursor = max(0, min(self.total - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self._visible)

    def action_jump(self, where: int) -> None:
        if self.total:
            self.cursor = self.total - 1 if where < 0 else 0

    def action_choose(self) -> None:
        row = self.current
        if row is not None:
            self.post_message(self.Chosen(self, row))

    def on_click(self, event: events.Click) -> None:
        index = self.scroll_offset.y + event.y - 1
        if event.y >= 1 and 0 <= index < self.total:
            self.cursor = index
            if event.chain >= 2:
                self.action_choose()
