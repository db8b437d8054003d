"""Named errors a person can act on that several layers raise.

``edge.cli`` reports these as user mistakes (one line, exit 2) and everything it does
not name as a defect, so a value regional IT mistyped must arrive as one of these, never
as a bare ``ValueError`` that a bug could raise too.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting, pattern or rule regional IT configured is not usable; the message names
    it and what it should be. A ``ValueError`` so that older callers still catch it."""
