"""Text from outside the box made safe to put on a screen or in a log line.

File names anyone with access to the scanner folder chose, texts printed in barcodes,
answers from whatever replies at central's URL, values in configuration: any of them
can carry a newline (a forged log line), an escape sequence (which clears the clerk's
screen, retitles the technician's terminal or paints a fake warning on it), a bidi
override (``U+202E`` makes ``gpj.exe`` read as ``exe.jpg``) or a byte that is not
UTF-8. :func:`printable` is the one rendering every boundary uses before such text
is shown or logged:

* a character that is not printable (``str.isprintable``: C0 and C1 controls, DEL,
  format characters such as bidi overrides and zero-width spaces, line and paragraph
  separators, spaces other than the ASCII space, unassigned code points) is written
  as its Python escape, ``\\x1b``, ``\\u202e`` or ``\\U000e0001``, so it stays visible
  and the technician can tell exactly what was there;
* a byte Python could not decode (a lone surrogate from "surrogateescape") is written
  ``\\xNN``, its value on disk, so the result can always be encoded as UTF-8;
* everything else, Vietnamese letters and backslashes included, is left as it is.

Backslashes are not doubled, so the rendering is idempotent: text that went through it
once (a file name capture stored through ``edge.capture.names.display_name``, a log
message quoting one) comes out unchanged, and layers that each make their input safe
never pile escapes on escapes. Where exact reversal matters (file names), that module
doubles backslashes on top of these same escapes.

It does not make text safe as markup: the clerk's UI never parses outside text as
markup in the first place (``edge.tui.widgets.common``).
"""

from __future__ import annotations

__all__ = ["escape_char", "printable"]


def escape_char(ch: str) -> str:
    """The visible form of one character ``printable`` does not let through as it is."""
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: one byte that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: object) -> str:
    """``text`` on one line, with nothing in it that a terminal or a log reader would act on."""
    value = text if isinstance(text, str) else str(text)
    if value.isprintable():
        return value  # the common case, with no per-character work
    return "".join(ch if ch.isprintable() else escape_char(ch) for ch in value)
