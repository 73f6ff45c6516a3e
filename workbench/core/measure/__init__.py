"""Measure layer of the headless core."""
