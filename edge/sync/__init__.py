"""Sync between a box and central: wire contract, box client, central receiver.

Data flows one way: sync reads the box's store and records; nothing in store,
vault or capture imports sync.
"""


class SyncError(Exception):
    """A sync problem a person can act on; the message says what to do."""
