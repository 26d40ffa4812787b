"""The ``circuit`` command line's way into a host: its local control socket, or, for
``circuit --url``, the same frames over the host's TLS port."""
