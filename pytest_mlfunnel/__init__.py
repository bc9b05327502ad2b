"""pytest-mlfunnel: an ML project's road to production as pytest items."""

__version__ = "0.1.0"
