"""Central's receiver: the Litestar app, its storage, blob store and commands."""
