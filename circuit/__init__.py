"""circuit: distributed control for a cluster of hosts, driven through a file system."""

__version__ = "0.1.0"
