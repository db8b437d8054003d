"""What the box says about itself: health summary, readiness, Prometheus metrics, the HTTP door.

Everything here reads the database through its own read-only connection: the daemon's
``Store`` belongs to the daemon's thread, and a scrape must never hold a writer's lock.
"""
