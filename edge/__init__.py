"""Commune Edge: the offline-first dossier box for commune post offices."""

__version__ = "0.1.0"
