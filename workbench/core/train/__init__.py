"""Train layer of the headless core."""
