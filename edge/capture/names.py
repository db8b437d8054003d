"""How the box writes a scanner file's name: in the database, in reports and in logs.

A Linux file name is bytes, not text. Scanners and copiers that write over SMB with a
legacy code page produce names that are not UTF-8 (``bad\\xff\\xfe.jpg``), and anyone
who can write to the inbox can put a newline or a terminal escape sequence in a name.
Python hands such names over with "surrogateescape" characters, which SQLite refuses
("surrogates not allowed") and which, written raw to a log or a terminal, forge log
lines or act on the technician's terminal.

So every name leaves capture in one rendering, :func:`display_name`, that is plain
printable text on one line and that can be turned back into the exact bytes on disk
(:func:`original_bytes`, :func:`inbox_path`):

* ``\\xNN``: the byte NN as it is on disk: a byte that is not part of valid UTF-8, or
  an ASCII control character (``\\x0a`` is a newline, ``\\x1b`` the escape of a
  terminal sequence, ``\\x7f`` DEL);
* ``\\uNNNN`` (``\\UNNNNNNNN`` above U+FFFF): a valid character that is not printable
  (``str.isprintable``), written as its code point: C1 controls, format characters
  (bidirectional overrides, zero-width characters), line and paragraph separators,
  spaces other than the ASCII space;
* ``\\\\``: a backslash, so that a name which itself contains ``\\x41`` stays distinct;
* anything else, Vietnamese letters included, is written as it is.

A name made only of printable UTF-8 without backslashes is therefore unchanged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath

from edge.printable import escape_char, printable

_ESCAPE = re.compile(r"\\(?:\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")


def escape_text(text: str, *, backslash: bool = True) -> str:
    """``text`` on one line with nothing a terminal or a log reader would act on.

    The escapes are :func:`edge.printable.printable`'s; ``backslash=True`` (file names)
    also doubles backslashes, which makes the rendering reversible. ``backslash=False``
    is ``printable`` itself: for text that need not be reversed.
    """
    if not backslash:
        return printable(text)
    if text.isprintable() and "\\" not in text:
        return text  # the common case, with no per-character work
    return "".join(
        "\\\\" if ch == "\\" else ch if ch.isprintable() else escape_char(ch) for ch in text
    )


def display_name(name: str | PurePath) -> str:
    """The one rendering of an inbox file's name (relative path) that the box stores and shows.

    Reversible: ``original_bytes(display_name(p)) == os.fsencode(p)``.
    """
    raw = os.fsencode(str(name))
    return escape_text(raw.decode("utf-8", "surrogateescape"))


def original_bytes(rendered: str) -> bytes:
    """The bytes of the file name that ``display_name`` rendered as ``rendered``.

    A backslash that starts no escape is taken literally, so names recorded before
    this rendering existed still map back to themselves.
    """
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(rendered):
        out += rendered[position : match.start()].encode("utf-8", "surrogateescape")
        token = match.group()
        if token == "\\\\":
            out += b"\\"
        elif token[1] == "x":
            out.append(int(token[2:], 16))
        else:
            out += chr(int(token[2:], 16)).encode("utf-8", "surrogatepass")
        position = match.end()
    out += rendered[position:].encode("utf-8", "surrogateescape")
    return bytes(out)


def inbox_path(inbox: Path, rendered: str) -> Path:
    """The path in ``inbox`` of the file whose stored name is ``rendered``."""
    return inbox / os.fsdecode(original_bytes(rendered))
