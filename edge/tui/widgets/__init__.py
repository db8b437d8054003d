"""Widgets of the clerk UI that Textual does not ship in the shape the desk needs."""
