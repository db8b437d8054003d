"""One module per screen of the clerk UI."""
