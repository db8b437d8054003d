"""Regional IT's mistakes at central's commands, by name.

A ``ValueError`` subclass, so callers written against the plain ``ValueError`` central
raised before still catch them; ``edge central`` turns them into one line and exit 2.
"""

from __future__ import annotations


class AdminError(ValueError):
    """A command cannot do what was asked; the message says how to fix it."""


class NoBoxInScope(AdminError):
    """An office scope that no enrolled box falls under (most likely a mistyped code)."""
