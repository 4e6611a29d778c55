"""Fixtures of the data tests: the local servers of source_servers.py."""

from source_servers import servers

__all__ = ["servers"]
