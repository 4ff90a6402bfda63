"""jacmon: a live monitor for learning platforms."""

__version__ = "0.1.0"
