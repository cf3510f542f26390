"""The package version: written into every checkpoint, export and metric record."""

__version__ = "0.2.0"
