"""Session layer of the headless core."""
