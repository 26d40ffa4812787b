"""The ``circuit`` command line."""
