"""The local control socket: the ``circuit`` command line's fast way into its own host."""
