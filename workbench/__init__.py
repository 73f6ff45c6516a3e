"""Workbench: point-and-click optimization of neural networks."""

__version__ = "0.1.0"
