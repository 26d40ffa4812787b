"""The FUSE view: the tree mounted with pyfuse3 on the reactor's asyncio loop."""
