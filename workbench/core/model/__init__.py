"""Model layer of the headless core."""
