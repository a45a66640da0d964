"""Overcast: network virtualization for an IaaS cloud."""

__version__ = "0.1.0"
