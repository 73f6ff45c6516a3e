"""The headless core: everything but drawing. Never imports Qt."""
