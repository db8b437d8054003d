"""Log lines that say only what the box means: one record, one line, no control characters.

Log messages carry text from outside the box: file names anyone with access to the
scanner folder chose, error messages quoting them, texts central sent. A newline in
such text would forge a second log line (``... ERROR`` of the attacker's choosing in
the journal), and an escape sequence would act on the terminal of the technician
reading the log. The formatter escapes the message the way ``edge.capture.names``
renders file names; only a traceback, which the box writes itself, keeps its lines.
"""

from __future__ import annotations

import logging
from typing import TextIO

from edge.capture.names import escape_text

FORMAT = "%(asctime)s %(levelname)s %(message)s"


class OneLineFormatter(logging.Formatter):
    """Escapes control characters, line separators and undecodable bytes in messages."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_text(super().formatMessage(record), backslash=False)


def one_line_handler(stream: TextIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter(FORMAT))
    return handler
