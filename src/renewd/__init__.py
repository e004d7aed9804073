"""renewd: the renewal lifecycle of a hosted email service, driven by declarative policy."""

__version__ = "0.1.0"
