"""Log lines that say only what the box means: one record, one line, no control characters.

Log messages carry text from outside the box: file names anyone with access to the
scanner folder chose, error messages quoting them, texts central sent. A newline in
such text would forge a second log line (``... ERROR`` of the attacker's choosing in
the journal), and an escape sequence would act on the terminal of the technician
reading the log. The formatter renders the message with ``edge.printable``. A
traceback, which the box writes itself, keeps its lines, but each line goes through
the same rendering: the exception messages in it quote the same outside text.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TextIO, TypeAlias

from edge.printable import printable

FORMAT = "%(asctime)s %(levelname)s %(message)s"

_ExcInfo: TypeAlias = (
    tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
)


def _lines(text: str) -> str:
    """Each line rendered on its own; only the newlines the traceback module wrote stay."""
    return "\n".join(printable(line) for line in text.split("\n"))


class OneLineFormatter(logging.Formatter):
    """Escapes control characters, line separators and undecodable bytes in messages."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei: _ExcInfo) -> str:
        return _lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _lines(super().formatStack(stack_info))


def one_line_handler(stream: TextIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter(FORMAT))
    return handler
