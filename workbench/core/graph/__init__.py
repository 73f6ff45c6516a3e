"""Graph layer of the headless core."""
